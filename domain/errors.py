"""Domain errors: every rejected command raises one, with a message a person can act on."""


class DomainError(Exception):
    """A command broke one of Chirp's rules. ``str(error)`` is for people."""


class InvalidUsername(DomainError):
    pass


class UsernameTaken(DomainError):
    pass


class InvalidDisplayName(DomainError):
    pass


class InvalidBio(DomainError):
    pass


class UserNotFound(DomainError):
    pass


class CannotFollowSelf(DomainError):
    pass


class AlreadyFollowing(DomainError):
    pass


class NotFollowing(DomainError):
    pass


class InvalidTweetText(DomainError):
    pass


class TweetNotFound(DomainError):
    pass


class NotTheAuthor(DomainError):
    pass


class TweetAlreadyDeleted(DomainError):
    pass


class PostKeyReused(DomainError):
    """A post's key (its form token) came again with another text."""
