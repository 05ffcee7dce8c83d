"""URLs of Chirp's pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web import health, limits, views

urlpatterns = [
    path("", views.home, name="home"),
    path("post", views.post_create, name="post_create"),
    path("compose/count", views.compose_count, name="compose_count"),
    path("health", health.health, name="health"),
    path("notifications", views.notifications, name="notifications"),
    path("settings", views.settings_view, name="settings"),
    path("tags/<str:tag>", views.tag, name="tag"),
    path("signup", views.signup, name="signup"),
    path("login", limits.login, name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("@<str:username>", views.profile, name="profile"),
    path("@<str:username>/followers", views.followers, name="followers"),
    path("@<str:username>/following", views.following, name="following"),
    path("@<str:username>/follow", views.follow, name="follow"),
    path("@<str:username>/unfollow", views.unfollow, name="unfollow"),
    path("@<str:username>/<uuid:post_id>", views.post_detail, name="post_detail"),
    path("@<str:username>/<uuid:post_id>/delete", views.post_delete, name="post_delete"),
]

handler404 = "web.errors.not_found"
handler403 = "web.errors.forbidden"
handler400 = "web.errors.bad_request"
handler500 = "web.errors.server_error"
