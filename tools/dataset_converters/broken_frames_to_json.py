# Copyright (c) mmstable authors. All rights reserved.
"""Convert a pickled 300VW broken-frame list (MMPose's ``broken_frames.npy``)
to the JSON file mmstable reads, without unpickling it.

The ``.npy`` is an object array, which ``np.load`` can only open by
unpickling (and so by running any code the file carries). This tool reads the
pickle's opcodes instead and accepts only a dict of video ids to 1-based frame
numbers (``mmstable.datasets.broken_frames.read_pickled_broken_frames``).

Usage::

    python tools/dataset_converters/broken_frames_to_json.py \\
        data/300vw/broken_frames.npy data/300vw/broken_frames.json
"""
import argparse
import sys
from typing import List, Optional

from mmstable.datasets.broken_frames import convert_broken_frames


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('npy', help='pickled broken_frames.npy')
    parser.add_argument('json', help='output .json')
    args = parser.parse_args(argv)
    try:
        data = convert_broken_frames(args.npy, args.json)
    except (ValueError, OSError) as e:
        print(f'broken_frames_to_json.py: error: {e}', file=sys.stderr)
        return 1
    print(f'{sum(map(len, data.values()))} broken frames of {len(data)} '
          f'videos written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
