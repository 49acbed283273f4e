"""Video synthesis from single frames (tracker.data.video_synthesis): deterministic for a
seed, the mask is exactly the pasted object's visible pixels, feathering stays inside the
object, bad input names its sequence and frame, and `--synthesize` draws only on the
training sequences a fold leaves."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from tracker.data import InMemorySequence, Sequence, write_vot_list, write_vot_sequence
from tracker.data.video_synthesis import SynthesisConfig, VideoSynthesizer, cut_object, synthesize_sequences

BACKGROUND = (40, 90, 160)
COLOURS = {"alpha": (200, 30, 30), "beta": (20, 210, 60)}
FLAT = dict(lighting=0.0, gamma=0.0, feather=0, distractors=0)
"""Nothing but geometry: no lighting jitter, hard edges, no distractors."""


def flat_sequence(name: str, frames: int = 4, size: tuple[int, int] = (72, 96)) -> InMemorySequence:
    """A disc of the sequence's colour moving over a flat background."""
    height, width = size
    ys, xs = np.mgrid[:height, :width]
    images, masks = [], []
    for t in range(frames):
        mask = (xs - 30 - 4 * t) ** 2 + (ys - 34) ** 2 < 14**2
        image = np.empty((height, width, 3), np.uint8)
        image[:] = BACKGROUND
        image[mask] = COLOURS[name]
        images.append(image)
        masks.append(mask)
    return InMemorySequence(name, images, masks)


def textured_sources() -> list[Sequence]:
    from tracker.data.synth import generate_sequence

    return [generate_sequence(seed, 6, 128, 96, name=f"tex{seed}", distractors=1) for seed in (1, 2)]


def of_colour(frame: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(frame == np.array(colour, np.uint8), axis=-1)


def target_colour(synthesizer: VideoSynthesizer, clip: int) -> tuple[int, int, int]:
    origin = synthesizer.clip(clip).metadata["target"]
    return next(colour for name, colour in COLOURS.items() if f"'{name}'" in origin)


def test_frames_are_deterministic_for_a_seed_and_differ_across_seeds():
    sources = textured_sources()
    config = SynthesisConfig(frames=8, distractors=2, distractor_probability=1.0)
    first, second = VideoSynthesizer(sources, config, seed=5), VideoSynthesizer(sources, config, seed=5)
    for clip in (0, 3):
        for t in (7, 0, 4):  # any order: a frame depends on (seed, clip, t) alone
            frame, mask = first.render(clip, t)
            again, again_mask = second.render(clip, t)
            assert frame.tobytes() == again.tobytes() and np.array_equal(mask, again_mask)
            assert frame.shape == (96, 128, 3) and frame.dtype == np.uint8 and mask.dtype == bool
    other = VideoSynthesizer(sources, config, seed=6)
    assert first.render(0, 0)[0].tobytes() != other.render(0, 0)[0].tobytes()
    assert first.render(0, 0)[0].tobytes() != first.render(1, 0)[0].tobytes()
    # A mask read alone is the rendered frame's.
    for t in range(8):
        fresh = synthesize_sequences(sources, 4, config, seed=5)[3]
        assert np.array_equal(fresh.mask(t), first.render(3, t)[1])
        assert fresh.frame(t).tobytes() == first.render(3, t)[0].tobytes()
    # A clip rebuilt after leaving the cache renders the same bytes.
    small = VideoSynthesizer(sources, SynthesisConfig(frames=8, cache_clips=1), seed=5)
    before = small.render(0, 2)[0].tobytes()
    small.render(1, 0)
    assert small.render(0, 2)[0].tobytes() == before


def test_many_distinct_clips_and_a_clip_survives_pickling():
    import pickle

    clips = synthesize_sequences([flat_sequence("alpha"), flat_sequence("beta")], 60, SynthesisConfig(frames=3))
    assert len({clip.frame(0).tobytes() for clip in clips}) == 60
    copy = pickle.loads(pickle.dumps(clips[7]))  # as a data-loading worker receives it
    assert copy.frame(2).tobytes() == clips[7].frame(2).tobytes() and copy.name == clips[7].name


def test_the_mask_is_exactly_the_pasted_object():
    sources = [flat_sequence("alpha"), flat_sequence("beta")]
    synthesizer = VideoSynthesizer(sources, SynthesisConfig(frames=6, **FLAT), seed=0)
    moved = 0
    for clip in range(6):
        colour = target_colour(synthesizer, clip)
        masks = []
        for t in range(6):
            frame, mask = synthesizer.render(clip, t)
            assert mask.any()
            assert np.array_equal(mask, of_colour(frame, colour)), (clip, t)
            masks.append(mask)
        moved += not np.array_equal(masks[0], masks[-1])
    assert moved >= 5  # the object moves (or scales or turns) over a clip


@pytest.mark.parametrize("front", [True, False])
def test_distractors_in_front_hide_target_pixels_and_those_behind_do_not(front):
    sources = [flat_sequence("alpha"), flat_sequence("beta")]
    plain = dict(FLAT, distractors=0, object_drift=0.05)
    busy = dict(plain, distractors=2, distractor_probability=1.0, front_probability=1.0 if front else 0.0)
    alone = VideoSynthesizer(sources, SynthesisConfig(frames=8, **plain), seed=1)
    crowded = VideoSynthesizer(sources, SynthesisConfig(frames=8, **busy), seed=1)
    hidden = 0
    for clip in range(6):
        colour = target_colour(crowded, clip)
        other = next(c for c in COLOURS.values() if c != colour)
        assert target_colour(alone, clip) == colour  # switching distractors on changes nothing else
        for t in range(8):
            frame, mask = crowded.render(clip, t)
            assert np.array_equal(mask, of_colour(frame, colour)), (clip, t)
            _, unhidden = alone.render(clip, t)
            if front:
                assert not (mask & ~unhidden).any()
                covered = unhidden & ~mask
                assert of_colour(frame, other)[covered].all()  # what hides the target is a distractor
                hidden += int(covered.sum())
            else:
                assert np.array_equal(mask, unhidden)
    if front:
        assert hidden > 0


def test_feathering_stays_inside_the_mask():
    sources = textured_sources()
    hard = VideoSynthesizer(sources, SynthesisConfig(frames=5, **dict(FLAT, feather=0)), seed=2)
    soft = VideoSynthesizer(sources, SynthesisConfig(frames=5, **dict(FLAT, feather=3)), seed=2)
    differs = 0
    for clip in range(3):
        for t in (0, 4):
            frame, mask = soft.render(clip, t)
            hard_frame, hard_mask = hard.render(clip, t)
            assert np.array_equal(mask, hard_mask)  # feathering does not move the mask
            assert np.array_equal(frame[~mask], hard_frame[~mask])  # nor paint outside it
            differs += int((frame[mask] != hard_frame[mask]).any())
    assert differs  # the outline's inner rim is blended


def test_bad_input_names_the_sequence_and_frame():
    frame = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match=r"sequence 'cat', frame 3: the mask is empty"):
        cut_object(frame, np.zeros((20, 30), bool), "cat", 3)
    with pytest.raises(ValueError, match=r"sequence 'cat', frame 4: the mask is 20x31 but the frame is 20x30"):
        cut_object(frame, np.ones((20, 31), bool), "cat", 4)

    class Mismatched(Sequence):
        def __len__(self) -> int:
            return 2

        @property
        def frame_size(self) -> tuple[int, int]:
            return (20, 30)

        def _frame(self, index: int) -> np.ndarray:
            return frame

        def _mask(self, index: int) -> np.ndarray:
            return np.ones((24, 30), bool)

    with pytest.raises(ValueError, match=r"sequence 'odd', frame \d: the mask is 24x30 but the frame is 20x30"):
        synthesize_sequences([Mismatched("odd")], 1)[0].frame(0)
    empty = InMemorySequence("void", [frame] * 3, [np.zeros((20, 30), bool)] * 3)
    with pytest.raises(ValueError, match=r"sequence 'void': no frame's mask has 64 or more object pixels"):
        synthesize_sequences([empty], 1)[0].frame(0)
    with pytest.raises(ValueError, match="at least one source"):
        VideoSynthesizer([])


@pytest.mark.parametrize("field, value", [("frames", 1), ("object_scale", 0.9), ("feather", 1.5),
                                          ("other_background", -0.1), ("distractors", True)])
def test_bad_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=rf"synthesis {field}="):
        SynthesisConfig(**{field: value})


def test_empty_frames_of_a_source_are_skipped():
    sequence = flat_sequence("alpha", frames=5)
    masks = [sequence.mask(i) if i == 2 else np.zeros(sequence.frame_size, bool) for i in range(5)]
    occluded = InMemorySequence("alpha", [sequence.frame(i) for i in range(5)], masks)
    synthesizer = VideoSynthesizer([occluded], SynthesisConfig(frames=3, **FLAT), seed=0)
    for clip in range(4):
        assert synthesizer.clip(clip).metadata["target"] == "sequence 'alpha', frame 2"


def test_synthesize_draws_only_on_the_training_sequences_a_fold_leaves(tmp_path):
    from tracker.training.sources import training_sequences

    root = tmp_path / "vot"
    for name in COLOURS:
        write_vot_sequence(root, flat_sequence(name))
    write_vot_list(root, list(COLOURS))
    sequences = training_sequences([root], exclude=["beta"], synthesize=4, synthesize_frames=5, synthesize_seed=3)
    assert [s.name for s in sequences] == ["alpha", *(f"synthesized-s3-{i:05d}" for i in range(4))]
    for clip in sequences[1:]:
        assert len(clip) == 5 and clip.frame_size == (72, 96)
        clip.frame(0)
        assert "beta" not in " ".join(clip.metadata.values())


def test_the_training_commands_take_the_synthesis_options():
    from tracker.commands import synthesize
    from tracker.commands.train import add_arguments
    from tracker.training import sources

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for command in ("local", "iterative", "global", "fcn"):
        args = parser.parse_args([command, "--data", "d", "--out", "o", "--synthesize", "300",
                                  "--synthesize-frames", "12", "--synthesize-seed", "7"])
        assert (args.synthesize, args.synthesize_frames, args.synthesize_seed) == (300, 12, 7)
    defaults = parser.parse_args(["local", "--data", "d", "--out", "o"])
    assert defaults.synthesize == 0
    assert defaults.synthesize_frames == sources.SYNTHESIZE_FRAMES == synthesize.DEFAULT_FRAMES == SynthesisConfig().frames
    assert defaults.synthesize_seed == sources.SYNTHESIZE_SEED == synthesize.DEFAULT_SEED


def test_synthesize_command_writes_clips_and_a_strip(tmp_path):
    from PIL import Image

    from tracker.cli import main
    from tracker.data import load_dataset

    root = tmp_path / "vot"
    for name in COLOURS:
        write_vot_sequence(root, flat_sequence(name))
    write_vot_list(root, list(COLOURS))
    out = tmp_path / "out"
    assert main(["synthesize", str(root), str(out), "--clips", "2", "--frames", "4", "--strip-frames", "3"]) == 0
    written = load_dataset(out)
    assert [s.name for s in written] == ["synthesized-s0-00000", "synthesized-s0-00001"]
    assert len(written[0]) == 4 and written[0].mask(0).any()
    with Image.open(out / "strip.png") as strip:
        assert strip.size[0] == 3 * 240 and strip.size[1] > 0


DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train"


@pytest.mark.skipif(not DAVIS.is_dir(), reason="needs ../shared/data/davis2016-train")
def test_clips_from_real_sequences():
    from tracker.training.sources import load_folder

    sources = load_folder(DAVIS)[:3]
    clip = synthesize_sequences(sources, 1, SynthesisConfig(frames=3), seed=0)[0]
    frame, mask = clip.frame(2), clip.mask(2)
    assert frame.shape == (*sources[0].frame_size, 3) and mask.shape == sources[0].frame_size and mask.any()
