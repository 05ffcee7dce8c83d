"""URLs of bench/server.py's server: Chirp's pages (``web.urls``), and a
trivial view at ``/bench/trivial``: the baseline the home page is compared
with, served by the same server through the same middleware."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from web import urls as chirp_urls

TRIVIAL_PATH = "/bench/trivial"
TRIVIAL_TEXT = "Hello from a trivial Django view."


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(TRIVIAL_TEXT, content_type="text/plain; charset=utf-8")


urlpatterns = [path(TRIVIAL_PATH.lstrip("/"), trivial), *chirp_urls.urlpatterns]

handler404 = chirp_urls.handler404
handler403 = chirp_urls.handler403
handler400 = chirp_urls.handler400
handler500 = chirp_urls.handler500
