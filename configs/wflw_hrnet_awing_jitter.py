# configs/wflw_hrnet_jitter.py on MMPose's HRNetV2-W18 trained with the Adaptive Wing loss
# (td-hm_hrnetv2-w18_awing-8xb64-60e_wflw-256x256.py: same architecture and codec, only the loss differs).
_base_ = './wflw_hrnet_jitter.py'
load_from = 'https://download.openmmlab.com/mmpose/face/hrnetv2/hrnetv2_w18_wflw_256x256_awing-5af5055c_20211212.pth'
# frozen, so never computed; kept so that the base head reads as the AWing config's
model = dict(head=dict(base_head=dict(loss=dict(type='AdaptiveWingLoss'))))
