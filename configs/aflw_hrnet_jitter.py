# configs/wflw_hrnet_jitter.py on MMPose's AFLW HRNetV2-W18 (td-hm_hrnetv2-w18_8xb64-60e_aflw-256x256.py):
# 19 landmarks, same codec as WFLW; NME normalised by the box size (the longer side of the GT bbox), as MMPose's.
_base_ = './wflw_hrnet_jitter.py'
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_aflw_256x256-f2bbc62b_20210125.pth'

model = dict(head=dict(base_head=dict(out_channels=19)))
_data = dict(type='AFLWDataset', data_root='data/aflw/')
train_dataloader = dict(dataset=dict(dataset=dict(_data, ann_file='annotations/face_landmarks_aflw_train.json')))
val_dataloader = dict(dataset=dict(dataset=dict(_data, ann_file='annotations/face_landmarks_aflw_test.json')))
test_dataloader = dict(dataset=dict(_data, ann_file='annotations/face_landmarks_aflw_test.json'))
_bbox_nme = dict(norm_mode='use_norm_item', norm_item='bbox_size')
test_evaluator = dict(type='NME', **_bbox_nme)
# NME x NMF (checkpoint selection) normalises by the outer eye corners of AFLW-19 (6, 11): AFLW has no NME default
val_evaluator = [dict(type='VideoNME', **_bbox_nme, **_base_._clips),
                 dict(type='NMF', nme_product=True, keypoint_indices=(6, 11), **_base_._clips),
                 *_base_.val_evaluator[2:]]
