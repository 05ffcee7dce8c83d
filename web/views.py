"""Views: parse the request, call a command or query, render. No rules live here.

Domain errors propagate to ``web.middleware`` (a 4xx page with the message);
form errors re-render the form with status 400.
"""

from __future__ import annotations

import re
from uuid import UUID

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from application.feeds import MAX_FOLLOW_OFFSET
from application.queries import InvalidQuery
from domain.errors import DomainError
from domain.text import MAX_WEIGHTED_LENGTH, is_valid_length, normalize_hashtag, weighted_length
from domain.user import username_key
from web.forms import PostForm, ProfileForm, SignUpForm
from web.runtime import get_chirp
from web.selectors import following_of, sidebar
from web.services import sign_up

USERS_PER_PAGE = 50
# The last page that a list of follows could reach; pages past it are 404s.
MAX_USER_PAGE = MAX_FOLLOW_OFFSET // USERS_PER_PAGE + 1
PAGE_NUMBER = re.compile(r"([+-]?)0*([0-9]+)")


def _viewer(request: HttpRequest) -> str | None:
    return request.user.get_username() if request.user.is_authenticated else None


def _cursor(request: HttpRequest) -> str | None:
    return request.GET.get("cursor") or None


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    if viewer is None:
        return render(request, "web/welcome.html", {"sidebar": sidebar(get_chirp(), None)})
    return _home(request, viewer, PostForm())


def _home(request: HttpRequest, viewer: str, form: PostForm, status: int = 200) -> HttpResponse:
    chirp = get_chirp()
    context = {
        "form": form,
        "page": chirp.queries.home_timeline(viewer, cursor=_cursor(request)),
        "sidebar": sidebar(chirp, viewer),
        "max_length": MAX_WEIGHTED_LENGTH,
    }
    return render(request, "web/home.html", context, status=status)


@login_required
@require_POST
def post_create(request: HttpRequest) -> HttpResponse:
    viewer = request.user.get_username()
    form = PostForm(request.POST)
    if form.is_valid():
        try:
            get_chirp().post(viewer, form.cleaned_data["text"])
        except DomainError as error:
            form.add_error("text", str(error))
        else:
            return redirect("home")
    return _home(request, viewer, form, status=400)


@require_GET
def compose_count(request: HttpRequest) -> JsonResponse:
    """The server's weighted length of a draft, for the live counter."""
    text = request.GET.get("text", "")
    length = weighted_length(text)
    return JsonResponse(
        {
            "weighted_length": length,
            "remaining": MAX_WEIGHTED_LENGTH - length,
            "valid": bool(text.strip()) and is_valid_length(text),
        }
    )


@require_GET
def profile(request: HttpRequest, username: str) -> HttpResponse:
    chirp = get_chirp()
    viewer = _viewer(request)
    user = chirp.queries.user(username)
    following = following_of(chirp, viewer)
    context = {
        "profile": user,
        "page": chirp.queries.profile_feed(user.username, cursor=_cursor(request)),
        "is_self": viewer is not None and username_key(viewer) == username_key(user.username),
        "is_following": username_key(user.username) in following,
        "sidebar": sidebar(chirp, viewer, following),
    }
    return render(request, "web/profile.html", context)


def _page_number(request: HttpRequest) -> int:
    """The page asked for: 1 when none (or one below 1). A page number that
    is no whole number is a 400; one past the end of any list, a 404."""
    text = request.GET.get("page", "1").strip()
    found = PAGE_NUMBER.fullmatch(text)
    if found is None:
        raise InvalidQuery("the page number must be a whole number")
    sign, digits = found.groups()
    if sign == "-":
        return 1
    # Checked by length first: int() refuses a few thousand digits.
    if len(digits) > len(str(MAX_USER_PAGE)) or int(digits) > MAX_USER_PAGE:
        raise Http404("no such page")
    return max(1, int(digits))


def _user_list(request: HttpRequest, username: str, which: str) -> HttpResponse:
    chirp = get_chirp()
    user = chirp.queries.user(username)
    page_number = _page_number(request)
    offset = (page_number - 1) * USERS_PER_PAGE
    lister = chirp.queries.followers if which == "followers" else chirp.queries.following
    users = lister(user.username, USERS_PER_PAGE + 1, offset)
    if not users and page_number > 1:
        raise Http404("no such page")  # past the end; the first page may be empty
    context = {
        "profile": user,
        "which": which,
        "users": users[:USERS_PER_PAGE],
        "next_page": page_number + 1 if len(users) > USERS_PER_PAGE else None,
        "sidebar": sidebar(chirp, _viewer(request)),
    }
    return render(request, "web/user_list.html", context)


@require_GET
def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _user_list(request, username, "followers")


@require_GET
def following(request: HttpRequest, username: str) -> HttpResponse:
    return _user_list(request, username, "following")


@login_required
@require_POST
def follow(request: HttpRequest, username: str) -> HttpResponse:
    get_chirp().follow(request.user.get_username(), username)
    return redirect("profile", username=username)


@login_required
@require_POST
def unfollow(request: HttpRequest, username: str) -> HttpResponse:
    get_chirp().unfollow(request.user.get_username(), username)
    return redirect("profile", username=username)


@require_GET
def tag(request: HttpRequest, tag: str) -> HttpResponse:
    chirp = get_chirp()
    try:
        page = chirp.queries.hashtag(tag, cursor=_cursor(request))
    except InvalidQuery:
        raise Http404(f"#{tag} is not a hashtag") from None
    context = {
        "tag": normalize_hashtag(tag),
        "page": page,
        "sidebar": sidebar(chirp, _viewer(request)),
    }
    # A tag nobody has used (or whose posts are all gone) is unknown: 404,
    # with a page that says how to start it.
    status = 404 if not page.items and not _cursor(request) else 200
    return render(request, "web/tag.html", context, status=status)


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    chirp = get_chirp()
    viewer = request.user.get_username()
    context = {
        "page": chirp.queries.notifications(viewer, cursor=_cursor(request)),
        "sidebar": sidebar(chirp, viewer),
    }
    return render(request, "web/notifications.html", context)


@require_GET
def post_detail(request: HttpRequest, username: str, post_id: UUID) -> HttpResponse:
    chirp = get_chirp()
    item = chirp.queries.post(post_id)
    if username_key(item.author.username) != username_key(username):
        raise Http404("no such post")
    viewer = _viewer(request)
    context = {
        "item": item,
        "is_author": viewer is not None and username_key(viewer) == username_key(username),
        "sidebar": sidebar(chirp, viewer),
    }
    return render(request, "web/post.html", context)


@login_required
@require_POST
def post_delete(request: HttpRequest, username: str, post_id: UUID) -> HttpResponse:
    get_chirp().delete_post(post_id, by=request.user.get_username())
    return redirect("profile", username=request.user.get_username())


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = sign_up(get_chirp(), data["username"], data["password"], data["display_name"])
        except DomainError as error:
            form.add_error("username", str(error))
        else:
            login(request, account, backend="web.auth.ChirpBackend")
            return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    chirp = get_chirp()
    viewer = request.user.get_username()
    current = chirp.queries.user(viewer)
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                chirp.update_profile(
                    viewer, form.cleaned_data["display_name"], form.cleaned_data["bio"]
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                return redirect("profile", username=viewer)
        return render(request, "web/settings.html", {"form": form}, status=400)
    form = ProfileForm(initial={"display_name": current.display_name, "bio": current.bio})
    return render(request, "web/settings.html", {"form": form})
