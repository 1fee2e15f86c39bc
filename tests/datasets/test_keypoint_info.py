import json

import pytest
from paths import COCO_PERSON_MINI, needs_sample

from densevit.datasets.keypoint_info import COCO_KEYPOINTS, KeypointInfo, flip_pairs_from_names, from_coco_category


@needs_sample(COCO_PERSON_MINI / "annotations" / "person_keypoints_mini.json")
def test_coco_keypoints_match_the_coco_file_and_cocoeval():
    category = json.loads((COCO_PERSON_MINI / "annotations" / "person_keypoints_mini.json").read_text())[
        "categories"][0]
    info = from_coco_category(category)
    assert info == COCO_KEYPOINTS
    assert info.num_keypoints == 17
    assert info.flip_pairs == ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
    assert info.flip_index[:5] == (0, 2, 1, 4, 3)
    # the sigmas COCOeval uses, bit for bit
    from pycocotools.cocoeval import Params
    assert list(info.sigmas) == Params(iouType="keypoints").kpt_oks_sigmas.tolist()
    assert info.sides[:3] == (0, 1, -1)


def test_any_keypoint_set_from_a_category():
    category = {"name": "hand", "keypoints": ["wrist", "LeftTip", "RightTip", "l_knuckle", "r_knuckle"],
                "skeleton": [[1, 2], [1, 3]]}
    info = from_coco_category(category, sigmas=[0.1] * 5)
    assert info.flip_pairs == ((1, 2), (3, 4))
    assert info.skeleton == ((0, 1), (0, 2))
    assert info.upper_body == ()
    assert flip_pairs_from_names(["a", "b"]) == ()


def test_errors_name_the_problem():
    category = {"name": "hand", "keypoints": ["a", "b", "c"], "skeleton": []}
    with pytest.raises(ValueError, match="not COCO's 17"):
        from_coco_category(category, source="hands.json")
    with pytest.raises(ValueError, match="declares 3 keypoints, but 2 sigmas"):
        from_coco_category(category, sigmas=[0.1, 0.1])
    with pytest.raises(ValueError, match=r"hands.json: KeypointInfo: flip_pairs \[\(1, 3\)\] out of range"):
        from_coco_category(category, sigmas=[0.1] * 3, flip_pairs=[[1, 3]], source="hands.json")
    with pytest.raises(ValueError, match="skeleton links"):
        from_coco_category({**category, "skeleton": [[0, 1]]}, sigmas=[0.1] * 3)
    with pytest.raises(ValueError, match="two flip_pairs"):
        KeypointInfo(names=("a", "b", "c"), flip_pairs=((0, 1), (1, 2)), skeleton=(), sigmas=(1, 1, 1))
