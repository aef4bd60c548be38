# configs/wflw_hrnet_jitter.py on MMPose's DARK HRNetV2-W18 (td-hm_hrnetv2-w18_dark-8xb64-60e_wflw-256x256.py):
# unbiased codec — DARK targets (sub-pixel Gaussian centres) for the Jitter loss's pixel term, DARK decoding
# of the base head; the refined heatmaps are still decoded by PDC (Algorithm 1).
_base_ = './wflw_hrnet_jitter.py'
load_from = 'https://download.openmmlab.com/mmpose/face/darkpose/hrnetv2_w18_wflw_256x256_dark-3f8e0c2c_20210125.pth'

codec = dict(_base_.codec, unbiased=True)
model = dict(head=dict(base_head=dict(decoder=dict(unbiased=True)), decoder=codec))
# the base pipeline with every target encoder (GenerateTarget inside ApplyToFrames) swapped for `codec`
train_pipeline = [dict(t, transforms=[dict(f, encoder=codec) if 'encoder' in f else f for f in t.transforms])
                  if t.type == 'ApplyToFrames' else t for t in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
