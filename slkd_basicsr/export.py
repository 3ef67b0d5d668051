"""``python -m slkd_basicsr.export``: the same as ``slkd-export`` (see :mod:`slkd_basicsr.tools.export`)."""
import sys

from slkd_basicsr.tools.export import main

if __name__ == '__main__':
    sys.exit(main())
