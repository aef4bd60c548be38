# Copyright (c) mmstable authors. All rights reserved.
"""Label the fetched registry faces with two 68-point teachers (dlib and
OpenCV LBF), keep the faces they agree on, split them by identity and write
MMPose COCO files (300W layout) and a report.

Usage::

    python tools/dataset_converters/label_registry_faces.py \\
        [--root data/registry_faces] [--agreement-threshold 5] [--force]

Reads ``<root>/manifest.json`` and the files it lists (run
``fetch_registry_faces.py`` first); writes ``<root>/annotations/
teacher_labels_{all,train,val,test}.json`` and ``teacher_report.json``.
Skips the work when those exist (``--force`` relabels). Labels inherit the
teachers' iBUG 300-W terms: non-commercial.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmstable.datasets.real_faces.teachers import (  # noqa: E402
    label_registry_faces, labels_ready)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--root', default='data/registry_faces')
    p.add_argument('--agreement-threshold', type=float, default=5.,
                   help='keep a face when the teachers\' mean point distance'
                   ' is at most this, in %% of the inter-ocular distance '
                   '(outer eye corners); default 5')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the identity split')
    p.add_argument('--force', action='store_true',
                   help='relabel even if the label files exist')
    args = p.parse_args(argv)
    report_path = osp.join(args.root, 'annotations', 'teacher_report.json')
    if labels_ready(args.root) and osp.isfile(report_path) and not args.force:
        with open(report_path) as f:
            report = json.load(f)
        if report.get('agreement_threshold') == args.agreement_threshold:
            print(f'label_registry_faces: labels exist in {args.root}/'
                  f'annotations ({report["faces_kept"]} faces, '
                  f'{report["identities"]} identities); nothing to do '
                  '(--force relabels)')
            return
    try:
        report = label_registry_faces(args.root, args.agreement_threshold,
                                      args.seed)
    except (FileNotFoundError, ImportError, ValueError) as e:
        sys.exit(f'label_registry_faces: {e}')
    print(json.dumps({k: v for k, v in report.items() if k != 'licence'},
                     indent=1))


if __name__ == '__main__':
    main()
