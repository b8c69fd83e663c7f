"""controls.intrinsics: default camera, layouts, resize + centre-crop and latent grid against the official pipeline."""
import numpy as np
import pytest

from worldwalk.controls import intrinsics as ki


def test_default_camera_has_the_requested_fov():
    intr = ki.from_fov(256, 256, 60.0)
    np.testing.assert_allclose(intr, [128 / np.tan(np.radians(30)), 128 / np.tan(np.radians(30)), 128, 128])
    np.testing.assert_allclose(ki.fov_deg(intr, 256, 256), (60.0, 60.0))
    wide = ki.from_fov(1280, 704, 90.0)
    h, v = ki.fov_deg(wide, 1280, 704)
    assert h == pytest.approx(90.0) and v < h
    with pytest.raises(ValueError):
        ki.from_fov(0, 10)


def test_all_official_layouts_normalise_to_f_by_4():
    v = np.array([500.0, 510.0, 320.0, 180.0])
    K = ki.to_matrix(v)
    F = 3
    for layout in (v, K, np.tile(v, (F, 1)), np.tile(K, (F, 1, 1))):
        np.testing.assert_array_equal(ki.as_vectors(layout, F), np.tile(v, (F, 1)))
    with pytest.raises(ValueError, match="2 intrinsics for 3 poses"):
        ki.as_vectors(np.tile(v, (2, 1)), F)
    with pytest.raises(ValueError, match="shape"):
        ki.as_vectors(np.zeros(5), F)


def test_normalise_round_trip():
    v = np.array([[500.0, 510.0, 320.0, 180.0]])
    np.testing.assert_allclose(ki.denormalize(ki.normalize(v, 640, 360), 640, 360), v)


@pytest.mark.parametrize("src, target", [((1920, 1080), (1280, 704)), ((640, 480), (256, 256)),
                                         ((333, 517), (256, 192)), ((1280, 704), (1280, 704)), ((100, 60), (256, 256))])
def test_resize_crop_matches_the_official_pipeline(src, target):
    cam_utils = pytest.importorskip("diffusers.pipelines.sana_wm.cam_utils")
    Image = pytest.importorskip("PIL.Image")
    intr = np.array([[0.9 * src[0], 0.95 * src[0], 0.52 * src[0], 0.47 * src[1]]] * 2)
    img = Image.new("RGB", src)
    _, src_size, resized, offset = cam_utils.resize_and_center_crop(img, target_h=target[1], target_w=target[0])
    assert ki.resize_crop_geometry(src, target) == (resized, offset)
    expected = cam_utils.transform_intrinsics_for_crop(intr, src_size, resized, offset)
    np.testing.assert_allclose(ki.adjust_for_resize_crop(intr, src, target), expected, rtol=1e-12)


def test_latent_grid_matches_the_official_scaling():
    intr = np.array([[700.0, 690.0, 640.0, 352.0]])
    lat = ki.to_latent_grid(intr, (1280, 704), 32)
    assert ki.latent_grid_size((1280, 704), 32) == (40, 22)
    np.testing.assert_allclose(lat, intr / 32.0)
    # Sizes that are not multiples of the factor scale by latent/pixel size, as diffusers' prepare_camera does.
    lat = ki.to_latent_grid(intr, (1000, 700), 32)
    np.testing.assert_allclose(lat, intr * np.array([31 / 1000, 21 / 700, 31 / 1000, 21 / 700]))
