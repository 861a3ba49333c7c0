"""Tests of WAV writing and reading (fmlib.audio.audio_io)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from fmlib.audio.audio_io import check_output_path, read_wav, write_wav
from fmlib.errors import InputError, MissingFileError


def test_in_range_audio_is_written_as_16_bit_pcm(tmp_path, rng):
    audio = rng.uniform(-1, 1, 1600).astype(np.float32)
    path = write_wav(tmp_path / "a.wav", audio, 16_000)
    assert sf.info(path).subtype == "PCM_16"
    back, sr = read_wav(path)
    assert sr == 16_000 and back.shape == (1600, 1) and back.dtype == np.float32
    assert np.max(np.abs(back[:, 0] - audio)) <= 1 / 32768 + 1e-7
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary file


def test_audio_beyond_one_is_written_as_float_not_clipped(tmp_path, rng):
    audio = rng.uniform(-1.5, 1.5, 1600).astype(np.float32)
    path = write_wav(tmp_path / "b.wav", audio, 16_000)
    assert sf.info(path).subtype == "FLOAT"
    back, _ = read_wav(path)
    assert np.array_equal(back[:, 0], audio)


def test_write_wav_errors(tmp_path):
    with pytest.raises(InputError, match="'.mp3' is not a valid output extension"):
        write_wav(tmp_path / "a.mp3", np.zeros(10), 16_000)
    with pytest.raises(InputError, match="is a folder"):
        write_wav(tmp_path, np.zeros(10), 16_000)
    with pytest.raises(InputError, match="NaN"):
        write_wav(tmp_path / "nan.wav", np.array([0.0, np.nan]), 16_000)
    assert list(tmp_path.iterdir()) == []
    write_wav(tmp_path / "new" / "a.wav", np.zeros(10), 16_000)  # parents created
    assert (tmp_path / "new" / "a.wav").is_file()
    assert check_output_path(tmp_path / "ok.wav") == tmp_path / "ok.wav"


def test_existing_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "c.wav"
    path.write_bytes(b"old")
    write_wav(path, np.zeros(16), 16_000)
    assert read_wav(path)[0].shape == (16, 1)


def test_read_wav_errors(tmp_path):
    with pytest.raises(MissingFileError, match="no such audio file"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(InputError, match="not a readable audio file"):
        read_wav(tmp_path / "text.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16_000)
    with pytest.raises(InputError, match="empty"):
        read_wav(tmp_path / "empty.wav")
