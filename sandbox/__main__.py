"""Run the vendor sandbox: python -m sandbox [--port 8765]."""

import argparse
import logging

from werkzeug.serving import make_server

from sandbox.server import create_app
from sandbox.smtp_sink import start_smtp_sink


def main() -> None:
    parser = argparse.ArgumentParser(description="Bastion vendor sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--smtp-port", type=int, default=2525, help="SMTP sink for the demo's email notifications (0 disables it)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = make_server(args.host, args.port, create_app(), threaded=True)
    if args.smtp_port:
        start_smtp_sink(args.host, args.smtp_port)
        print(f"SMTP sink on {args.host}:{args.smtp_port} (messages appear in the inspector)", flush=True)
    print(f"Bastion vendor sandbox on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
