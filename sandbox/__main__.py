"""Run the vendor sandbox: python -m sandbox [--port 8765]."""

import argparse
import logging

from werkzeug.serving import make_server

from sandbox.server import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Bastion vendor sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = make_server(args.host, args.port, create_app(), threaded=True)
    print(f"Bastion vendor sandbox on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
