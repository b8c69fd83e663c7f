"""Start pictures are walked as a viewer shows them (world/images.as_seen): EXIF orientation, deep and transparent
pictures. Real files written by PIL (PNG, JPEG), read back through load_image and the web's upload path."""
import io

import numpy as np
import pytest
from PIL import Image

from worldwalk.app.web.uploads import check_image, prepare_image
from worldwalk.world.images import as_seen, image_hash, load_image

# what a viewer shows for each EXIF orientation, given the pixels as stored (the EXIF 2.3 definitions)
SHOWN = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # stored turned left: shown turned right (clockwise)
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, 1),  # shown turned counter-clockwise
}


def picture(w: int = 40, h: int = 24) -> np.ndarray:
    """An upright picture no turn or mirror maps onto itself: sky above ground, a red mark at the top left."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2] = (120, 170, 230)
    a[h // 2:] = (90, 140, 60)
    a[1:4, 1:6] = (230, 30, 30)
    return a


def stored(upright: np.ndarray, o: int) -> np.ndarray:
    """The pixels a camera stores with orientation o for a picture that is shown as `upright`."""
    for k in range(8):  # the turn / mirror whose SHOWN brings it back (search the 8 of the square's group)
        cand = [lambda a: a, lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 2), lambda a: np.rot90(a, 3)][k % 4](
            upright if k < 4 else upright[:, ::-1])
        if SHOWN[o](cand).shape == upright.shape and np.array_equal(SHOWN[o](cand), upright):
            return np.ascontiguousarray(cand)
    raise AssertionError(o)


def with_orientation(a: np.ndarray, o: int, fmt: str = "PNG", **kw) -> bytes:
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = o
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


@pytest.mark.parametrize("o", range(1, 9))
def test_every_exif_orientation_is_walked_upright(tmp_path, o):
    up = picture()
    path = tmp_path / f"o{o}.png"
    path.write_bytes(with_orientation(stored(up, o), o))
    img, _ = load_image(path)
    assert np.array_equal(np.asarray(img), up)
    assert np.array_equal(np.asarray(load_image(path.read_bytes())[0]), up)  # the same from bytes


def test_phone_jpeg_turned_upright_on_every_path(tmp_path):
    """A portrait photograph as phones store it (sideways, orientation 6): the desktop/CLI path, the web upload path
    (header size and the JPEG's reduced decode) and the hash all see it upright."""
    up = np.repeat(np.repeat(picture(30, 60), 20, 0), 20, 1)  # 600 x 1200 pixels, portrait
    data = with_orientation(stored(up, 6), 6, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (1200, 600)  # stored sideways
    img, _ = load_image(data)
    assert img.size == (600, 1200)
    a = np.asarray(img).astype(int)
    assert abs(a[100, 300] - (120, 170, 230)).max() < 12 and abs(a[1100, 300] - (90, 140, 60)).max() < 12
    assert a[40, 40, 0] > 200 and a[40, 40, 1] < 60  # the red mark, top left
    assert check_image(data, "phone.jpg") == (600, 1200)
    work = prepare_image(data, "phone.jpg", (256, 256)).astype(int)  # decoded at a reduced scale, then turned
    assert work.shape == (512, 256, 3)
    assert abs(work[40, 128] - (120, 170, 230)).max() < 12 and abs(work[470, 128] - (90, 140, 60)).max() < 12
    assert work[17, 17, 0] > 200 and work[17, 17, 1] < 60
    png = tmp_path / "upright.png"
    Image.fromarray(np.asarray(img)).save(png)
    assert image_hash(load_image(png)[0]) == image_hash(img)


def test_damaged_or_odd_orientation_is_ignored():
    a = picture()
    for o in (0, 9, 300):
        assert np.array_equal(np.asarray(load_image(with_orientation(a, o))[0]), a)


def test_sixteen_bit_picture_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG")
    img, _ = load_image(buf.getvalue())
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.mode.startswith("I")  # a deep picture, not PIL's 8-bit conversion on the way in
    a = np.asarray(img).astype(int)
    assert img.mode == "RGB" and a[0, 0, 0] == 0 and a[-1, -1, 0] == 255
    assert abs(a[32, 0, 0] - 128) <= 2 and (a[..., 0] == a[..., 2]).all()  # mid-grey mid-way (was 255: clipped)
    f = Image.fromarray((ramp / 65535.0).astype(np.float32))  # a float picture in [0, 1]
    b = np.asarray(as_seen(f)).astype(int)
    assert b[0, 0, 0] == 0 and b[-1, -1, 0] == 255 and abs(b[32, 0, 0] - 128) <= 2


def test_transparency_over_white():
    a = np.zeros((16, 16, 4), np.uint8)
    a[..., 0] = 255  # red under it all
    a[:8, :, 3] = 255  # opaque top half
    a[8:, :, 3] = 0  # transparent bottom half: hidden red, shown white
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, "PNG")
    out = np.asarray(load_image(buf.getvalue())[0])
    assert (out[:8] == (255, 0, 0)).all() and (out[8:] == 255).all()
    arr = np.asarray(load_image(a)[0])  # an RGBA array alike
    assert (arr[8:] == 255).all() and (arr[:8] == (255, 0, 0)).all()
    web = prepare_image(buf.getvalue(), "logo.png", (8, 8))
    assert (web[8:] == 255).all() and (web[:8] == (255, 0, 0)).all()
