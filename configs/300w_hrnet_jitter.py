# configs/wflw_hrnet_jitter.py on MMPose's 300W HRNetV2-W18 (td-hm_hrnetv2-w18_8xb64-60e_300w-256x256.py):
# 68 landmarks, heatmaps of sigma 1.5 (the Jitter loss's targets match the frozen model's training targets).
_base_ = './wflw_hrnet_jitter.py'
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_300w_256x256-eea53406_20211019.pth'

codec = dict(_base_.codec, sigma=1.5)
model = dict(head=dict(base_head=dict(out_channels=68, decoder=dict(sigma=1.5)), decoder=codec))
# the base pipeline with every target encoder (GenerateTarget inside ApplyToFrames) swapped for `codec`
train_pipeline = [dict(t, transforms=[dict(f, encoder=codec) if 'encoder' in f else f for f in t.transforms])
                  if t.type == 'ApplyToFrames' else t for t in _base_.train_pipeline]
_data = dict(type='Face300WDataset', data_root='data/300w/')
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, dataset=dict(
    _data, ann_file='annotations/face_landmarks_300w_train.json')))
_test_ann = 'annotations/face_landmarks_300w_valid.json'  # MMPose's 300W config tests on it too
val_dataloader = dict(dataset=dict(dataset=dict(_data, ann_file=_test_ann)))
test_dataloader = dict(dataset=dict(_data, ann_file=_test_ann))  # MMPose's protocol: one image, one prediction
