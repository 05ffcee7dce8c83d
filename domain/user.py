"""The User aggregate: registration under Twitter's username rules, profile, follows."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    AlreadyFollowing,
    CannotFollowSelf,
    InvalidBio,
    InvalidDisplayName,
    InvalidUsername,
    NotFollowing,
)
from domain.text import bio_character_problem, is_valid_username, name_character_problem

MAX_DISPLAY_NAME_LENGTH = 50
MAX_BIO_LENGTH = 160
_USER_NAMESPACE = uuid5(NAMESPACE_URL, "https://chirp.example/users")


def username_key(username: str) -> str:
    """Usernames are unique case-insensitively: this is the form compared."""
    return username.lower()


def check_username(username: str) -> None:
    if not isinstance(username, str) or not username:
        raise InvalidUsername("a username is needed")
    if len(username) > 15:
        raise InvalidUsername(
            f"username {username!r} is {len(username)} characters long; the limit is 15"
        )
    if not is_valid_username(username):
        raise InvalidUsername(f"username {username!r} may only contain letters, digits and _")


def check_display_name(display_name: str) -> None:
    """A display name is shown beside its @handle: one line of at most
    ``MAX_DISPLAY_NAME_LENGTH`` characters, none of which could reorder, hide
    or break the text around it (``domain.text.name_character_problem``)."""
    if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidDisplayName(
            f"a display name may have at most {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    problem = name_character_problem(display_name)
    if problem is not None:
        raise InvalidDisplayName(problem)


def check_bio(bio: str) -> None:
    """A bio is a few lines of text, with a post's character rule."""
    if len(bio) > MAX_BIO_LENGTH:
        raise InvalidBio(f"a bio may have at most {MAX_BIO_LENGTH} characters")
    problem = bio_character_problem(bio)
    if problem is not None:
        raise InvalidBio(problem)


class User(Aggregate):
    """A person on Chirp. Follows are recorded on the follower."""

    TOPIC = "chirp:User"

    class Event(Aggregate.Event):
        TOPIC = "chirp:User.Event"

    class Registered(Aggregate.Created):
        TOPIC = "chirp:UserRegistered"
        username: str
        display_name: str

    class ProfileUpdated(Aggregate.Event):
        TOPIC = "chirp:UserProfileUpdated"
        username: str
        display_name: str
        bio: str

    class Followed(Aggregate.Event):
        TOPIC = "chirp:UserFollowed"
        follower: str
        followee: str

    class Unfollowed(Aggregate.Event):
        TOPIC = "chirp:UserUnfollowed"
        follower: str
        followee: str

    @staticmethod
    def create_id(username: str) -> UUID:
        return uuid5(_USER_NAMESPACE, username_key(username))

    @classmethod
    def register(cls, username: str, display_name: str = "") -> User:
        check_username(username)
        display_name = display_name.strip() or username
        check_display_name(display_name)
        user: User = cls(username=username, display_name=display_name)
        return user

    @event(Registered)
    def __init__(self, username: str, display_name: str) -> None:
        self.username = username
        self.display_name = display_name
        self.bio = ""
        # A dict, not a set, so snapshots serialise it: lower-cased names as keys.
        self._followees: dict[str, None] = {}

    def update_profile(self, display_name: str, bio: str) -> None:
        display_name = display_name.strip() or self.username
        check_display_name(display_name)
        bio = bio.strip()
        check_bio(bio)
        if (display_name, bio) != (self.display_name, self.bio):
            self._update_profile(self.username, display_name, bio)

    @event(ProfileUpdated)
    def _update_profile(self, username: str, display_name: str, bio: str) -> None:
        self.display_name = display_name
        self.bio = bio

    def follow(self, followee: str) -> None:
        """Follow the user registered as ``followee`` (its canonical username)."""
        key = username_key(followee)
        if key == username_key(self.username):
            raise CannotFollowSelf("you cannot follow yourself")
        if key in self._followees:
            raise AlreadyFollowing(f"you already follow @{followee}")
        self._follow(self.username, followee)

    @event(Followed)
    def _follow(self, follower: str, followee: str) -> None:
        self._followees[username_key(followee)] = None

    def unfollow(self, followee: str) -> None:
        key = username_key(followee)
        if key not in self._followees:
            raise NotFollowing(f"you do not follow @{followee}")
        self._unfollow(self.username, followee)

    @event(Unfollowed)
    def _unfollow(self, follower: str, followee: str) -> None:
        self._followees.pop(username_key(followee), None)

    @property
    def following(self) -> set[str]:
        """Lower-cased usernames this user follows."""
        return set(self._followees)

    def follows(self, username: str) -> bool:
        return username_key(username) in self._followees
