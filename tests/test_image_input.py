"""The image / face-box contract of mmstable.apis (issue 12 items 4, 5):
every dtype and shape with its expected outcome."""
import numpy as np
import pytest

from mmstable.apis.image_input import check_boxes, check_image

BGR = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)  # (1, 2, 3)


def test_uint8_bgr_is_used_as_is():
    out = check_image(BGR)
    assert out is BGR


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_float_in_0_255_is_rounded_to_uint8(dtype):
    img = np.array([[[10.4, 19.6, 30.0], [0.0, 254.5, 255.0]]], dtype)
    out = check_image(img)
    assert out.dtype == np.uint8
    # np.rint: round half to even (254.5 -> 254)
    np.testing.assert_array_equal(out, [[[10, 20, 30], [0, 254, 255]]])


def test_all_black_float_image_is_accepted():
    out = check_image(np.zeros((2, 2, 3), np.float32))
    assert out.dtype == np.uint8 and not out.any()


@pytest.mark.parametrize('hi', [1.0, 0.5, 1e-3])
def test_float_in_0_1_is_refused(hi):
    img = np.full((4, 4, 3), hi, np.float64)
    with pytest.raises(ValueError, match=r'scaled to \[0, 1\].*multiply it '
                       'by 255'):
        check_image(img, 'frame 3')


@pytest.mark.parametrize('bad, match', [
    (-1.0, r'\[0, 255\], found \[-1, 2\]'),
    (256.0, r'\[0, 255\], found \[2, 256\]'),
    (np.nan, 'NaN or inf'),
    (np.inf, 'NaN or inf'),
])
def test_float_out_of_range_is_refused(bad, match):
    img = np.full((2, 2, 3), 2.0, np.float32)
    img[0, 0, 0] = bad
    with pytest.raises(ValueError, match=match):
        check_image(img)


@pytest.mark.parametrize('dtype, match', [
    (np.uint16, r'dtype uint16 \(a 16-bit image'),
    (bool, 'dtype bool'),
    (np.int64, 'dtype int64'),
    (np.int8, 'dtype int8'),
])
def test_other_dtypes_are_refused(dtype, match):
    with pytest.raises(TypeError, match=r'frame 7: expected a uint8 image.*'
                       + match):
        check_image(np.zeros((4, 4, 3), dtype), 'frame 7')


def test_grey_and_bgra_become_bgr():
    grey = np.array([[5, 200]], np.uint8)
    expected = np.array([[[5, 5, 5], [200, 200, 200]]], np.uint8)
    np.testing.assert_array_equal(check_image(grey), expected)
    np.testing.assert_array_equal(check_image(grey[..., None]), expected)
    bgra = np.concatenate([BGR, np.full((1, 2, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(check_image(bgra), BGR)
    # float grey: rounded, then replicated
    np.testing.assert_array_equal(
        check_image(np.array([[5.2, 199.8]], np.float32)), expected)


@pytest.mark.parametrize('shape', [(4, 4, 2), (4, 4, 5), (4, ), (1, 4, 4, 3),
                                   (0, 5, 3), (5, 0), (4, 4, 0)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(ValueError, match=rf'got shape \({shape[0]}'):
        check_image(np.zeros(shape, np.uint8))


def test_not_an_array_is_refused():
    with pytest.raises(TypeError, match='got list'):
        check_image([[1, 2]])


# ----------------------------------------------------------------- boxes
def test_valid_boxes_get_a_score():
    out = check_boxes([[1, 2, 30, 40], [-5, -5, 3, 3]], (50, 60))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 2, 30, 40, 1], [-5, -5, 3, 3, 1]])
    assert check_boxes([], (50, 60)).shape == (0, 5)
    np.testing.assert_array_equal(
        check_boxes([[1, 2, 3, 4, 0.5]], (50, 60)), [[1, 2, 3, 4, 0.5]])


@pytest.mark.parametrize('box, why', [
    ([np.nan, 2, 30, 40], 'has NaN or inf coordinates'),
    ([1, 2, np.inf, 40], 'has NaN or inf coordinates'),
    ([30, 2, 1, 40], r'is inverted \(x2 < x1'),
    ([1, 40, 30, 2], r'is inverted \(x2 < x1 or y2 < y1'),
    ([1, 2, 1, 40], 'has zero area'),
    ([4900, 4900, 5000, 5000], 'lies entirely outside the image'),
    ([60, 10, 70, 20], 'lies entirely outside'),  # x1 == W
    ([-20, -20, 0, 10], 'lies entirely outside'),  # x2 == 0
    ([1, 2, 30, 40, np.nan], 'has a non-finite score'),
])
def test_invalid_box_is_an_error_naming_it(box, why):
    boxes = [[1, 2, 30, 40, 1][:len(box)], box]
    with pytest.raises(ValueError, match=rf'frame 5: box 1 \[.*\] {why}.*'
                       r'\(image 60x50\)'):
        check_boxes(boxes, (50, 60), 'frame 5')


def test_invalid_box_skipped_with_a_warning():
    boxes = [[1, 2, 30, 40], [30, 2, 1, 40], [4900, 4900, 5000, 5000]]
    with pytest.warns(UserWarning) as record:
        out = check_boxes(boxes, (50, 60), 'frame 5', invalid_boxes='skip')
    np.testing.assert_array_equal(out, [[1, 2, 30, 40, 1]])
    msgs = [str(r.message) for r in record]
    assert len(msgs) == 2
    assert msgs[0].startswith('frame 5: box 1 [30, 2, 1, 40] is inverted')
    assert msgs[1].startswith('frame 5: box 2 [4900, 4900, 5000, 5000] lies '
                              'entirely outside')


def test_bad_box_arrays():
    with pytest.raises(ValueError, match=r'got shape \(1, 3\)'):
        check_boxes(np.zeros((1, 3)), (50, 60))
    with pytest.raises(ValueError, match='expected'):
        check_boxes([['a', 1, 2, 3]], (50, 60))
    with pytest.raises(ValueError, match='invalid_boxes'):
        check_boxes([], (5, 5), invalid_boxes='drop')


def test_boxes_without_image_size_skip_only_the_outside_test():
    far = [[4900, 4900, 5000, 5000]]
    np.testing.assert_array_equal(check_boxes(far, None), [far[0] + [1]])
    with pytest.raises(ValueError, match=r'box 0 \[5, 1, 2, 3\] is inverted'
                       r' \(x2 < x1 or y2 < y1\); fix'):
        check_boxes([[5, 1, 2, 3]], None)
