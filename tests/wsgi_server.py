"""Serve Chirp's WSGI application on a free port, many requests at a time.

``python -m tests.wsgi_server`` prints the port it listens on, then serves
until killed: a thread per request (as gunicorn's threads or runserver do)
and a listen backlog large enough for a burst of simultaneous connections
(Django's development server keeps 10, and the kernel resets the rest).
"""

from __future__ import annotations

import socketserver
from wsgiref.simple_server import WSGIServer, make_server

from web.wsgi import application


class ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    server = make_server("127.0.0.1", 0, application, server_class=ThreadedServer)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
