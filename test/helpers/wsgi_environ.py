"""A foreign app for test/foreign: Python's stdlib wsgiref server whose one
WSGI app answers every request with the CGI/WSGI environ it was given, as
JSON (the HTTP_* headers and the CGI request variables: REQUEST_METHOD,
PATH_INFO, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH, ...), plus the body it
read as "wsgi.body".
Usage: python3 wsgi_environ.py PORT"""
import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    # wsgiref starts the environ from os.environ: keep only what the request made.
    cgi = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_PROTOCOL", "REMOTE_ADDR")
    seen = {k: v for k, v in environ.items() if isinstance(v, str) and (k.startswith("HTTP_") or k in cgi)}
    seen["wsgi.body"] = body.decode("latin-1")
    out = json.dumps(seen, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=QuietHandler)
    server.serve_forever()
