"""``python -m genroute_worker``: the same entry point as the ``genroute-worker`` script."""

from genroute_worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
