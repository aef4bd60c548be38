# Smallest config a user writes: MMPose's WFLW HRNetV2 model, loaded through mmstable.
_base_ = 'mmpose::face_2d_keypoint/topdown_heatmap/wflw/td-hm_hrnetv2-w18_8xb64-60e_wflw-256x256.py'
custom_imports = dict(imports=['mmstable'], allow_failed_imports=False)
model = dict(backbone=dict(init_cfg=None))  # no download in tests
