# configs/wflw_hrnet_jitter.py on MMPose's COFW HRNetV2-W18 (td-hm_hrnetv2-w18_8xb64-60e_cofw-256x256.py):
# 29 landmarks; its codec (sigma 1.5) and everything else as configs/300w_hrnet_jitter.py.
_base_ = './300w_hrnet_jitter.py'
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_cofw_256x256-49243ab8_20211019.pth'

model = dict(head=dict(base_head=dict(out_channels=29)))
_data = dict(type='COFWDataset', data_root='data/cofw/')
train_dataloader = dict(dataset=dict(dataset=dict(_data, ann_file='annotations/cofw_train.json')))
val_dataloader = dict(dataset=dict(dataset=dict(_data, ann_file='annotations/cofw_test.json')))
test_dataloader = dict(dataset=dict(_data, ann_file='annotations/cofw_test.json'))
