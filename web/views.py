"""Views: parse the request, call a command or query, render. No rules live here.

Domain errors propagate to ``web.middleware`` (a 4xx page with the message);
form errors re-render the form with status 400, except the compose form's: a
refused post redirects home, where its draft and errors are shown again.
"""

from __future__ import annotations

import re
from uuid import UUID

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from application.feeds import MAX_FOLLOW_OFFSET
from application.queries import FeedItem, InvalidQuery
from application.service import Chirp
from domain.errors import DomainError, NotTheAuthor
from domain.text import MAX_WEIGHTED_LENGTH, normalize_hashtag, post_text_problem, weighted_length
from domain.user import username_key
from web import services
from web.forms import MAX_POST_RAW_LENGTH, PostForm, ProfileForm, SignUpForm
from web.limits import limit_per_ip
from web.runtime import get_chirp
from web.selectors import following_of, sidebar

USERS_PER_PAGE = 50
REFUSED_DRAFT = "chirp_refused_draft"  # session key: a refused post's text and errors
# The last page that a list of follows could reach; pages past it are 404s.
MAX_USER_PAGE = MAX_FOLLOW_OFFSET // USERS_PER_PAGE + 1
PAGE_NUMBER = re.compile(r"([+-]?)0*([0-9]+)")


def _viewer(request: HttpRequest) -> str | None:
    return request.user.get_username() if request.user.is_authenticated else None


def _cursor(request: HttpRequest) -> str | None:
    return request.GET.get("cursor") or None


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    chirp = get_chirp()
    if viewer is None:
        return render(request, "web/welcome.html", {"sidebar": sidebar(chirp, None)})
    # A refused post's draft and errors, left by post_create, are shown once
    # (by a GET: a HEAD leaves them for the page that will be read).
    refused = request.session.get(REFUSED_DRAFT) or {}
    if request.method == "GET":
        request.session.pop(REFUSED_DRAFT, None)
    context = {
        "form": PostForm.fresh(str(refused.get("text", ""))),
        "compose_errors": [str(message) for message in refused.get("errors", [])],
        "page": chirp.queries.home_timeline(viewer, cursor=_cursor(request)),
        "sidebar": sidebar(chirp, viewer),
        "max_length": MAX_WEIGHTED_LENGTH,
    }
    return render(request, "web/home.html", context)


@login_required
@require_POST
def post_create(request: HttpRequest) -> HttpResponse:
    """Post, then redirect home (Post/Redirect/Get). A refused post keeps its
    draft and errors in the session for the home page, so a refresh there
    never sends the post again."""
    viewer = request.user.get_username()
    form = PostForm(request.POST)
    if form.is_valid():
        try:
            get_chirp().post(viewer, form.cleaned_data["text"], key=form.cleaned_data["token"])
        except DomainError as error:
            form.add_error("text", str(error))
        else:
            return redirect("home")
    request.session[REFUSED_DRAFT] = {
        "text": request.POST.get("text", ""),
        "errors": form.error_messages(),
    }
    return redirect("home")


@require_safe
def compose_count(request: HttpRequest) -> JsonResponse:
    """The server's weighted length of a draft, for the live counter, and
    whether it may be posted: the very rule posting applies, with its reason.
    Only for people logged in, and only for drafts the post form could take:
    a longer one is refused before it costs any counting."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in to count a draft"}, status=403)
    text = request.GET.get("text", "")
    if len(text) > MAX_POST_RAW_LENGTH:
        return JsonResponse(
            {
                "error": f"a draft may have at most {MAX_POST_RAW_LENGTH} characters;"
                f" this one has {len(text)}"
            },
            status=400,
        )
    length = weighted_length(text)
    problem = post_text_problem(text)
    return JsonResponse(
        {
            "weighted_length": length,
            "remaining": MAX_WEIGHTED_LENGTH - length,
            "valid": problem is None,
            "message": problem,
        }
    )


@require_safe
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


@require_safe
def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _user_list(request, username, "followers")


@require_safe
def following(request: HttpRequest, username: str) -> HttpResponse:
    return _user_list(request, username, "following")


@login_required
@require_POST
def follow(request: HttpRequest, username: str) -> HttpResponse:
    services.follow(get_chirp(), request.user.get_username(), username)
    return redirect("profile", username=username)


@login_required
@require_POST
def unfollow(request: HttpRequest, username: str) -> HttpResponse:
    services.unfollow(get_chirp(), request.user.get_username(), username)
    return redirect("profile", username=username)


@require_safe
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
@require_safe
def notifications(request: HttpRequest) -> HttpResponse:
    chirp = get_chirp()
    viewer = request.user.get_username()
    context = {
        "page": chirp.queries.notifications(viewer, cursor=_cursor(request)),
        "sidebar": sidebar(chirp, viewer),
    }
    return render(request, "web/notifications.html", context)


def _post_at(chirp: Chirp, username: str, post_id: UUID) -> FeedItem:
    """The post ``post_id`` when ``username`` wrote it (its address), else 404."""
    item = chirp.queries.post(post_id)
    if username_key(item.author.username) != username_key(username):
        raise Http404("no such post")
    return item


@require_safe
def post_detail(request: HttpRequest, username: str, post_id: UUID) -> HttpResponse:
    chirp = get_chirp()
    item = _post_at(chirp, username, post_id)
    viewer = _viewer(request)
    context = {
        "item": item,
        "is_author": viewer is not None and username_key(viewer) == username_key(username),
        "sidebar": sidebar(chirp, viewer),
    }
    return render(request, "web/post.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def post_delete(request: HttpRequest, username: str, post_id: UUID) -> HttpResponse:
    """GET asks the author to confirm (a page whose form POSTs here); POST deletes."""
    chirp = get_chirp()
    viewer = request.user.get_username()
    if request.method == "POST":
        services.delete_post(chirp, post_id, by=viewer)
        return redirect("profile", username=viewer)
    item = _post_at(chirp, username, post_id)
    if username_key(item.author.username) != username_key(viewer):
        raise NotTheAuthor("only its author can delete a post")
    return render(
        request, "web/post_delete.html", {"item": item, "sidebar": sidebar(chirp, viewer)}
    )


@require_http_methods(["GET", "HEAD", "POST"])
@limit_per_ip("signup", "CHIRP_SIGNUP_LIMIT_PER_IP")
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.sign_up(
                get_chirp(), data["username"], data["password"], data["display_name"]
            )
        except DomainError as error:
            form.add_error("username", str(error))
        else:
            login(request, account, backend="web.auth.ChirpBackend")
            return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
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
