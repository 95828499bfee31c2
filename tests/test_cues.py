"""Low-level cue measures on synthetic images with known answers, and the pose rules."""

import numpy as np
import pytest

from emo_core.cues import lowlevel
from emo_core.cues.pose import (L_ANKLE, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, NOSE, R_ANKLE, R_HIP, R_KNEE,
                                R_SHOULDER, R_WRIST, actions_from_landmarks)


def solid(rgb, size=(32, 48)):
    return np.full(size + (3,), rgb, dtype=np.uint8)


@pytest.mark.parametrize("value, expected", [((0, 0, 0), 0.0), ((255, 255, 255), 1.0), ((128, 128, 128), 128 / 255)])
def test_brightness_of_flat_greys(value, expected):
    assert lowlevel.brightness(solid(value)) == pytest.approx(expected, abs=2e-3)


def test_brightness_orders_dark_below_bright_and_weights_green_over_blue():
    assert lowlevel.brightness(solid((40, 40, 40))) < lowlevel.brightness(solid((200, 200, 200)))
    assert lowlevel.brightness(solid((0, 255, 0))) > lowlevel.brightness(solid((0, 0, 255)))


def test_colorfulness_of_grey_is_zero_and_of_pure_red_is_known():
    assert lowlevel.colorfulness(solid((90, 90, 90))) == pytest.approx(0.0, abs=1e-9)
    # flat red: rg = 255, yb = 127.5, no spread -> M = 0.3 * sqrt(255^2 + 127.5^2)
    assert lowlevel.colorfulness(solid((255, 0, 0))) == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-6)


def test_colorfulness_grows_with_colour_spread():
    half = np.zeros((20, 20, 3), dtype=np.uint8)
    half[:, :10] = (255, 0, 0)
    half[:, 10:] = (0, 0, 255)
    muted = (half * 0.3 + 90).astype(np.uint8)
    assert lowlevel.colorfulness(half) > lowlevel.colorfulness(muted) > 0
    assert lowlevel.describe_colorfulness(lowlevel.colorfulness(half)) == "extremely colourful"
    assert lowlevel.describe_colorfulness(0.0) == "not colourful"


def test_downscaling_keeps_the_statistics_of_photos():
    from tests.media import group_photo

    image = np.asarray(group_photo(5, (1920, 1280)))
    small = lowlevel.downscaled(image)
    assert max(small.shape[:2]) == 512
    assert lowlevel.brightness(small) == pytest.approx(lowlevel.brightness(image), rel=0.01)
    assert lowlevel.colorfulness(small) == pytest.approx(lowlevel.colorfulness(image), rel=0.02)


def landmarks():
    """A standing person, 100 px shoulder width, arms down."""
    points = np.zeros((33, 4), dtype=np.float32)
    points[:, 3] = 1.0
    layout = {NOSE: (150, 50), L_SHOULDER: (200, 120), R_SHOULDER: (100, 120), L_WRIST: (210, 300),
              R_WRIST: (90, 300), L_HIP: (185, 300), R_HIP: (115, 300), L_KNEE: (185, 420), R_KNEE: (115, 420),
              L_ANKLE: (185, 540), R_ANKLE: (115, 540)}
    for index, (x, y) in layout.items():
        points[index, :2] = (x, y)
    return points


def test_pose_rules():
    assert actions_from_landmarks(landmarks()) == ["standing"]
    assert "arms raised" in actions_from_landmarks(landmarks_with({L_WRIST: (220, 20), R_WRIST: (80, 20)}))
    assert "one arm raised" in actions_from_landmarks(landmarks_with({L_WRIST: (230, 60)}))
    assert "hands near the face" in actions_from_landmarks(landmarks_with({R_WRIST: (140, 80)}))
    assert "arms crossed" in actions_from_landmarks(landmarks_with({L_WRIST: (110, 200), R_WRIST: (190, 200)}))
    assert "sitting or crouching" in actions_from_landmarks(landmarks_with({L_KNEE: (230, 320), R_KNEE: (70, 320)}))


def landmarks_with(moved: dict):
    points = landmarks()
    for index, (x, y) in moved.items():
        points[index, :2] = (x, y)
    return points


def test_pose_rules_need_visible_shoulders():
    points = landmarks()
    points[L_SHOULDER, 3] = 0.1
    assert actions_from_landmarks(points) == []
