# Real-face image model (issue 11): the demo's small MMPose recipe (configs/demo/synthetic_image_model.py:
# ResNet-18/2 at 128x128, MSRAHeatmap, Adam) trained on real-textured face videos as images -- registry photos
# labelled by two teachers (dlib + OpenCV LBF, within 5 % IOD), animated along the synthetic trajectories
# (RealFaceVideoDataset) -- and evaluated against the teacher labels of held-out identities (NME, % of the
# outer-eye-corner distance). Data: tools/dataset_converters/fetch_registry_faces.py, then
# label_registry_faces.py. Labels inherit the teachers' iBUG 300-W terms: non-commercial.
_base_ = './synthetic_image_model.py'

# 108 videos x 15 frames: each of the ~54 training identities twice, ~1600 frames as in the synthetic stage
_train = dict(type='RealFaceVideoDataset', data_root='data/real_faces', faces_root='data/registry_faces',
              split='train', as_images=True, num_videos=108, num_frames=15, data_mode='topdown')
# held-out identities: the labelled photos themselves (not animated), MMPose's 300W reader
_photos = dict(type='Face300WDataset', data_root='data/registry_faces', data_prefix=dict(img=''),
               data_mode='topdown', test_mode=True, pipeline={{_base_.val_pipeline}})
train_dataloader = dict(dataset=dict(_train, _delete_=True, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(_photos, _delete_=True, ann_file='annotations/teacher_labels_val.json'))
test_dataloader = dict(dataset=dict(_photos, _delete_=True, ann_file='annotations/teacher_labels_test.json'))
