# The refiner stage of the demo (configs/demo/synthetic_jitter.py) on real-textured faces (issue 11): the frozen
# image model of configs/demo/real_image_model.py, pseudo-clips of the real-textured training frames, and
# held-out identities animated with the four synthetic motions x two box modes (same scenario keys,
# 'moving_jittered/NMF' and the like). Labels inherit the teachers' iBUG 300-W terms: non-commercial.
_base_ = './synthetic_jitter.py'
load_from = 'work_dirs/demo/real_image_model/epoch_6.pth'

_real = dict(type='RealFaceVideoDataset', data_root='data/real_faces', faces_root='data/registry_faces')
# pseudo-clips only (no filmed clips of real faces yet): the keypoint stage stays the fixed Kalman filter of its init
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ImageSequenceDataset', pipeline=_base_.train_pipeline, clip_len=(8, 16),
    dataset=dict(_real, split='train', as_images=True, num_videos=108, num_frames=15, indices=480)))
test_dataloader = dict(dataset=_real)  # merged into the synthetic test set: presets, box modes, sizes kept
val_dataloader = test_dataloader
