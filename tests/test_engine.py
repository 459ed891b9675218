"""The training engine: teacher cache, GradCache, learnable temperature, precision, loaders."""

import threading
import weakref

import numpy as np
import pytest
import torch
from _helpers import PoisonableLinear, load_benchmark, one_engine_step
from sentence_transformers import SentenceTransformer
from sklearn.model_selection import GridSearchCV

from cwcl_sk import CWCLAligner, clear_teacher_cache
from cwcl_sk.callbacks import Callback
from cwcl_sk.encoders.teachers.frozen import _DiskCache
from cwcl_sk.inputs import unique_float_rows, unique_rows
from cwcl_sk.losses import cwcl_loss
from cwcl_sk.training import MAX_LOGIT_SCALE, TrainingState, epoch_generators

FAST = {"max_epochs": 4, "batch_size": 16, "device": "cpu", "random_state": 0}


def precomputed_aligner(**params):
    return CWCLAligner(teacher="precomputed", **{**FAST, **params})


@pytest.fixture
def count_encoded_texts(monkeypatch):
    """Every text the SentenceTransformer model encodes, in order, from a cold cache."""
    clear_teacher_cache()
    encoded = []
    original = SentenceTransformer.encode

    def counting_encode(self, sentences, *args, **kwargs):
        encoded.extend(sentences)
        return original(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting_encode)
    yield encoded
    clear_teacher_cache()


@pytest.fixture(scope="module")
def varied_texts(colour_data):
    """Features and 18 distinct texts (3 colours x 6 shades), several pairs each."""
    X, labels, names = colour_data
    shades = ["light", "dark", "pale", "deep", "bright", "dull"]
    texts = [f"{shades[index % 6]} {names[label]}" for index, label in enumerate(labels)]
    return X, texts


# -- teacher cache ---------------------------------------------------------------------------


def test_grid_search_encodes_each_unique_text_once(varied_texts, count_encoded_texts):
    X, texts = varied_texts
    search = GridSearchCV(
        CWCLAligner(**{**FAST, "max_epochs": 2}), {"temperature": [0.03, 0.07, 0.2]}, cv=3
    )
    search.fit(X, texts)
    # 3 folds x 3 temperatures + the refit = 10 fits, yet each text meets the model once.
    assert len(count_encoded_texts) == len(set(texts)) == 18
    assert sorted(count_encoded_texts) == sorted(set(texts))


def test_disk_cache_serves_a_new_process_without_encoding(
    varied_texts, count_encoded_texts, tmp_path
):
    X, texts = varied_texts
    first = CWCLAligner(**FAST, cache_dir=tmp_path).fit(X, texts)
    assert first.teacher_.n_encoded == len(set(texts))
    clear_teacher_cache()  # what a new process (a worker, a rerun) starts with
    count_encoded_texts.clear()
    second = CWCLAligner(**FAST, cache_dir=tmp_path).fit(X, texts)
    assert second.teacher_.n_encoded == 0
    assert count_encoded_texts == []
    np.testing.assert_array_equal(second.candidate_embeddings_, first.candidate_embeddings_)


def test_disk_cache_rows_round_trip_and_leave_no_temporary_files(tmp_path):
    cache = _DiskCache(tmp_path, ("sentence-transformers", "some teacher"))
    rows = {f"text {index}": np.full(4, index, dtype=np.float32) for index in range(20)}

    def write_all():
        for text, row in rows.items():
            cache.put(text, row)

    # Concurrent writers of the same items: each file is renamed into place whole.
    writers = [threading.Thread(target=write_all) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    for text, row in rows.items():
        np.testing.assert_array_equal(cache.get(text), row)
    assert not list(tmp_path.rglob("*.tmp"))
    assert cache.get("never written") is None


def test_unreadable_disk_cache_file_is_a_miss(tmp_path):
    cache = _DiskCache(tmp_path, ("sentence-transformers", "some teacher"))
    cache.put("a text", np.ones(3, dtype=np.float32))
    cache._path("a text").write_bytes(b"truncated")
    assert cache.get("a text") is None


def test_disk_cache_separates_teachers(tmp_path):
    first = _DiskCache(tmp_path, ("sentence-transformers", "teacher a"))
    second = _DiskCache(tmp_path, ("sentence-transformers", "teacher b"))
    first.put("same text", np.ones(3, dtype=np.float32))
    assert second.get("same text") is None


def test_precomputed_unique_rows_match_the_reference_loop():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(40, 5)).astype(np.float32)
    rows[[7, 20, 33]] = rows[3]  # duplicates
    rows[11, :2] = rows[12, :2]  # a shared key for different rows: the slow, exact path
    for array in (rows, rows[:, :1].copy(), rng.normal(size=(9, 3)).astype(np.float32)):
        uniques, inverse = unique_float_rows(array)
        expected_uniques, expected_inverse = unique_rows(array)
        np.testing.assert_array_equal(uniques, np.stack(expected_uniques))
        np.testing.assert_array_equal(inverse, expected_inverse)


def test_cache_dir_must_be_a_path(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(TypeError, match="cache_dir"):
        precomputed_aligner(cache_dir=3).fit(X, teacher_embeddings)


# -- GradCache -------------------------------------------------------------------------------


class _SavedBytes:
    """Peak bytes of tensors saved for backward inside the context: activation memory.

    Parameters saved by their layers are left out: they are in memory either way.
    """

    def __init__(self, parameters):
        self.parameters = {parameter.data_ptr() for parameter in parameters}
        self.current = self.peak = 0

    def _pack(self, tensor):
        size = 0 if tensor.data_ptr() in self.parameters else tensor.numel() * tensor.element_size()
        self.current += size
        self.peak = max(self.peak, self.current)
        box = _Box(tensor)
        # The graph drops the box when it frees the saved tensor.
        weakref.finalize(box, self._release, size)
        return box

    def _release(self, size):
        self.current -= size

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _Box.unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


class _Box:
    def __init__(self, tensor):
        self.tensor = tensor

    def unpack(self):
        return self.tensor


def _student(dropout=0.0, hidden=32, seed=0):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(6, hidden), torch.nn.GELU()]
    if dropout:
        layers.append(torch.nn.Dropout(dropout))
    layers += [torch.nn.Linear(hidden, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 8)]
    return torch.nn.Sequential(*layers)


def _one_step_gradients(model, X, teacher, mini_batch_size, seed=0):
    """Gradients of one engine step on the whole of X as one contrastive batch."""
    state = TrainingState(model, torch.optim.SGD(model.parameters(), lr=0.0))

    def batch_loss(student_embeddings, teacher_embeddings, indices):
        return cwcl_loss(student_embeddings, teacher_embeddings, 0.1)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        loss = one_engine_step(state, X, teacher, batch_loss, mini_batch_size)
    return loss, [parameter.grad.clone() for parameter in model.parameters()]


def _reference_gradients(model, X, teacher, chunk_sizes, seed=0):
    """Gradients of one full graph over the whole batch, embedded chunk by chunk."""
    model.train()
    model.zero_grad()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pieces = [model(torch.from_numpy(part)) for part in np.split(X, np.cumsum(chunk_sizes))]
    loss = cwcl_loss(torch.cat(pieces), torch.from_numpy(teacher), 0.1)
    loss.backward()
    return loss, [parameter.grad.clone() for parameter in model.parameters()]


@pytest.fixture(scope="module")
def batch_of_pairs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6)).astype(np.float32)
    teacher = rng.normal(size=(50, 8)).astype(np.float32)
    return X, teacher


def test_grad_cache_gradients_equal_the_full_batch(batch_of_pairs):
    X, teacher = batch_of_pairs
    full_loss, full = _one_step_gradients(_student(), X, teacher, None)
    cached_loss, cached = _one_step_gradients(_student(), X, teacher, 8)
    assert float(cached_loss) == pytest.approx(float(full_loss), abs=1e-6)
    for expected, actual in zip(full, cached, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_grad_cache_replays_dropout_in_the_second_pass(batch_of_pairs):
    X, teacher = batch_of_pairs
    # 50 samples in chunks of at most 8: the 7 chunks GradCache embeds.
    chunk_sizes = [len(chunk) for chunk in np.array_split(np.arange(50), 7)][:-1]
    reference_loss, reference = _reference_gradients(
        _student(dropout=0.5), X, teacher, chunk_sizes, seed=3
    )
    cached_loss, cached = _one_step_gradients(_student(dropout=0.5), X, teacher, 8, seed=3)
    assert float(cached_loss) == pytest.approx(float(reference_loss.detach()), abs=1e-6)
    for expected, actual in zip(reference, cached, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    # The comparison is sharp: other dropout masks give clearly different gradients.
    _, other = _reference_gradients(_student(dropout=0.5), X, teacher, chunk_sizes, seed=4)
    assert (other[0] - reference[0]).abs().max() > 1e-3


class _SpecAugmentStudent(torch.nn.Module):
    """A tiny wav2vec2 whose only randomness is SpecAugment, which transformers draws with
    NumPy's global generator, not torch's; the input is a batch of equal-length waveforms."""

    def __init__(self):
        super().__init__()
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        from cwcl_sk.encoders.students.audio import SpeechTransformerEncoder

        torch.manual_seed(0)
        config = Wav2Vec2Config(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            conv_dim=(8,) * 7,
            num_conv_pos_embeddings=4,
            num_conv_pos_embedding_groups=2,
            feat_extract_norm="layer",
            mask_time_prob=0.5,
            mask_time_length=2,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            feat_proj_dropout=0.0,
            layerdrop=0.0,
        )
        self.encoder = SpeechTransformerEncoder(Wav2Vec2Model(config))
        self.encoder.model.masked_spec_embed.data.normal_()  # masked frames clearly differ
        self.head = torch.nn.Linear(16, 8)

    def forward(self, waveforms):
        batch = {"input_values": waveforms, "attention_mask": torch.ones_like(waveforms)}
        return self.head(self.encoder(batch))


def test_grad_cache_replays_numpy_drawn_masks_in_the_second_pass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 1600)).astype(np.float32)  # 0.1 s clips: 4 frames each
    teacher = rng.normal(size=(12, 8)).astype(np.float32)

    def reference(seed):
        model = _SpecAugmentStudent().train()
        with torch.random.fork_rng():
            np.random.seed(seed)  # noqa: NPY002
            torch.manual_seed(seed)
            pieces = [model(torch.from_numpy(part)) for part in np.split(X, 3)]
        cwcl_loss(torch.cat(pieces), torch.from_numpy(teacher), 0.1).backward()
        return [parameter.grad.clone() for parameter in model.parameters()]

    model = _SpecAugmentStudent()
    state = TrainingState(model, torch.optim.SGD(model.parameters(), lr=0.0))
    with torch.random.fork_rng():
        np.random.seed(3)  # noqa: NPY002
        torch.manual_seed(3)
        one_engine_step(state, X, teacher, lambda s, t, i: cwcl_loss(s, t, 0.1), mini_batch_size=4)
    expected = reference(3)
    for wanted, actual in zip(expected, model.parameters(), strict=True):
        torch.testing.assert_close(actual.grad, wanted, atol=1e-5, rtol=0)
    # Sharp: other SpecAugment masks give other gradients.
    assert (reference(4)[0] - expected[0]).abs().max() > 1e-4


def test_grad_cache_keeps_activation_memory_near_one_chunk():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 6)).astype(np.float32)
    teacher = rng.normal(size=(128, 8)).astype(np.float32)

    def peak(n_samples, mini_batch_size):
        model = _student(hidden=1024)
        with _SavedBytes(model.parameters()) as saved:
            _one_step_gradients(model, X[:n_samples], teacher[:n_samples], mini_batch_size)
        return saved.peak

    one_chunk, whole_batch = peak(16, None), peak(128, None)
    cached = peak(128, 16)
    assert cached <= 1.5 * one_chunk
    assert whole_batch >= 4 * cached


def test_grad_cache_fit_equals_plain_fit(paired_features):
    X, teacher_embeddings = paired_features
    plain = precomputed_aligner(batch_size=30).fit(X, teacher_embeddings)
    cached = precomputed_aligner(batch_size=30, mini_batch_size=7).fit(X, teacher_embeddings)
    np.testing.assert_allclose(cached.transform(X), plain.transform(X), atol=1e-5)
    assert [r["train_loss"] for r in cached.history_] == pytest.approx(
        [r["train_loss"] for r in plain.history_], abs=1e-5
    )


def test_grad_cache_fit_with_dropout_is_reproducible(paired_features):
    X, teacher_embeddings = paired_features
    params = {"batch_size": 30, "mini_batch_size": 8, "student__dropout": 0.3}
    first = precomputed_aligner(**params).fit(X, teacher_embeddings)
    second = precomputed_aligner(**params).fit(X, teacher_embeddings)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))


def test_non_finite_loss_with_grad_cache_keeps_the_last_good_epoch(paired_features):
    X, teacher_embeddings = paired_features
    student = PoisonableLinear(X.shape[1], teacher_embeddings.shape[1])
    aligner = precomputed_aligner(
        student=student, max_epochs=2, mini_batch_size=5, learn_temperature=True
    )
    aligner.fit(X, teacher_embeddings)
    before, temperature = aligner.transform(X), aligner.temperature_
    aligner.student_.encoder.poisoned = True
    with pytest.raises(FloatingPointError, match=r"epoch 3.*restored"):
        aligner.partial_fit(X, teacher_embeddings)
    aligner.student_.encoder.poisoned = False
    np.testing.assert_array_equal(aligner.transform(X), before)
    assert aligner.temperature_ == temperature
    assert len(aligner.history_) == 2


def test_interrupt_during_grad_cache_keeps_completed_epochs(paired_features):
    X, teacher_embeddings = paired_features

    class InterruptingCallback(Callback):
        def on_batch_end(self, estimator, batch_index, loss):
            if len(estimator.history_) == 1:
                raise KeyboardInterrupt

    aligner = precomputed_aligner(mini_batch_size=5, callbacks=[InterruptingCallback()])
    with pytest.warns(RuntimeWarning, match="interrupted during epoch 2"):
        with pytest.raises(KeyboardInterrupt):
            aligner.fit(X, teacher_embeddings)
    assert len(aligner.history_) == 1
    assert aligner.stop_reason_ == "interrupted"


@pytest.mark.parametrize("value", [0, -2, 1.5, "8"])
def test_bad_mini_batch_size_is_rejected_naming_it(paired_features, value):
    X, teacher_embeddings = paired_features
    with pytest.raises((TypeError, ValueError), match="mini_batch_size"):
        precomputed_aligner(mini_batch_size=value).fit(X, teacher_embeddings)


# -- temperature -----------------------------------------------------------------------------


def test_learned_temperature_moves_and_is_recorded_every_epoch(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(
        learn_temperature=True, temperature=0.5, learning_rate=0.05, max_epochs=5
    )
    aligner.fit(X, teacher_embeddings)
    temperatures = [record["temperature"] for record in aligner.history_]
    assert len(set(temperatures)) == 5
    assert temperatures[-1] < 0.5  # aligned pairs: a sharper softmax lowers the loss
    assert aligner.temperature_ == pytest.approx(temperatures[-1])
    assert len(aligner.optimizer_.param_groups) == 2
    assert aligner.optimizer_.param_groups[1]["weight_decay"] == 0.0


def test_fixed_temperature_stays_fixed(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(temperature=0.3).fit(X, teacher_embeddings)
    assert {record["temperature"] for record in aligner.history_} == {0.3}
    assert len(aligner.optimizer_.param_groups) == 1


def test_learned_logit_scale_is_clamped_at_log_100(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(
        learn_temperature=True, temperature=0.0101, learning_rate=0.5, max_epochs=3
    )
    aligner.fit(X, teacher_embeddings)
    assert float(aligner._logit_scale.log_scale.detach()) <= MAX_LOGIT_SCALE
    assert aligner.temperature_ >= 0.01 * (1 - 1e-6)


def test_learned_temperature_below_the_clamp_is_rejected(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="temperature"):
        precomputed_aligner(learn_temperature=True, temperature=0.005).fit(X, teacher_embeddings)


def test_learned_temperature_survives_save_and_load(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(learn_temperature=True, learning_rate=0.05)
    aligner.fit(X, teacher_embeddings).save(tmp_path)
    loaded = CWCLAligner.load(tmp_path)
    assert loaded.temperature_ == aligner.temperature_
    assert float(loaded._logit_scale.log_scale.detach()) == float(
        aligner._logit_scale.log_scale.detach()
    )


def test_learned_temperature_resumes_from_a_checkpoint_exactly(paired_features, tmp_path):
    X, teacher_embeddings = paired_features
    params = {"learn_temperature": True, "learning_rate": 0.05, "max_epochs": 6}
    uninterrupted = precomputed_aligner(**params, checkpoint_dir=tmp_path)
    uninterrupted.fit(X, teacher_embeddings)
    resumed = precomputed_aligner(**params)
    resumed.fit(X, teacher_embeddings, resume_from=tmp_path / "epoch-0003")
    assert [r["temperature"] for r in resumed.history_] == pytest.approx(
        [r["temperature"] for r in uninterrupted.history_], rel=1e-6
    )
    np.testing.assert_allclose(resumed.transform(X), uninterrupted.transform(X), atol=1e-6)


def test_learn_temperature_switched_on_for_a_warm_start(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(warm_start=True, max_epochs=2).fit(X, teacher_embeddings)
    aligner.set_params(learn_temperature=True, learning_rate=0.05)
    aligner.fit(X, teacher_embeddings)
    assert aligner.history_[-1]["temperature"] != 0.07
    assert len(aligner.optimizer_.param_groups) == 2


# -- precision and device ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["64", "fp16", 16, None])
def test_unknown_precision_is_rejected_naming_it(paired_features, value):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="'precision'"):
        precomputed_aligner(precision=value).fit(X, teacher_embeddings)


def test_16_mixed_on_the_cpu_is_rejected_naming_precision(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match=r"precision='16-mixed'.*CUDA"):
        precomputed_aligner(precision="16-mixed").fit(X, teacher_embeddings)


def test_bf16_autocast_trains_on_the_cpu(paired_features):
    X, teacher_embeddings = paired_features
    aligner = precomputed_aligner(precision="bf16", max_epochs=20)
    aligner.fit(X, teacher_embeddings)
    embeddings = aligner.transform(X)
    assert embeddings.dtype == np.float32
    assert aligner.history_[-1]["train_loss"] < aligner.history_[0]["train_loss"]
    assert aligner.score(X, teacher_embeddings) >= 0.8


# -- data loading and seeding -----------------------------------------------------------------


def test_dataloader_workers_give_the_same_model(paired_features):
    X, teacher_embeddings = paired_features
    in_process = precomputed_aligner(max_epochs=2).fit(X, teacher_embeddings)
    workers = precomputed_aligner(max_epochs=2, num_workers=2).fit(X, teacher_embeddings)
    np.testing.assert_array_equal(workers.transform(X), in_process.transform(X))


def test_bad_num_workers_is_rejected_naming_it(paired_features):
    X, teacher_embeddings = paired_features
    with pytest.raises(ValueError, match="num_workers"):
        precomputed_aligner(num_workers=-1).fit(X, teacher_embeddings)


def test_ranks_shuffle_alike_but_draw_their_own_dropout():
    rank0_rng, rank0_seed = epoch_generators(5, 2, rank=0)
    rank1_rng, rank1_seed = epoch_generators(5, 2, rank=1)
    np.testing.assert_array_equal(rank0_rng.permutation(10), rank1_rng.permutation(10))
    assert rank0_seed != rank1_seed
    # Rank 0 keeps the single-process seed, so one process trains as before.
    assert rank0_seed == epoch_generators(5, 2)[1]


# -- the speed benchmark -----------------------------------------------------------------------


def test_speed_benchmark_rows_run_on_tiny_sizes():
    """A smoke run of benchmarks/speed.py's measurements (the real run takes minutes)."""
    speed = load_benchmark("speed")
    tiny = {
        **speed.QUICK,
        "loss_n": 64,
        "fit_samples": 256,
        "memory_samples": 64,
        "memory_batch": 64,
        "memory_chunk": 16,
        "memory_frames": 4,
    }
    rows = [speed.loss_ratio(tiny), *speed.fit_ratio(tiny)]
    assert [row["name"] for row in rows] == ["loss", "fit", "transform"]
    assert all(row["value"] > 0 for row in rows)
    probe = speed.memory_probe("grad_cache", tiny)
    assert probe["saved_for_backward_peak_bytes"] > 0
    assert "| loss |" in speed.markdown({**speed_results(rows), "quick": True})


def speed_results(rows):
    return {"torch": torch.__version__, "threads": 1, "machine": "test", "rows": rows}
