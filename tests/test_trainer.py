"""The trainer on CPU in seconds: tiny random Qwen2 -> LoRA steps -> GGUF adapter -> llama.cpp loads it.

The tiny model is built here from a transformers config and written both as an HF folder and as an
F32 GGUF (with the Qwen2.5 tokenizer copied from the fetched default model's GGUF). Nothing is
mocked: the real training loop runs, the real exporter writes the adapter, llama-cpp-python loads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from conftest import REPO, default_model_or_skip  # noqa: E402

from trainer.data import (  # noqa: E402
    ensure_solution_import,
    from_coderm_row,
    load_examples,
    split_of,
    tokenize,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_split_is_deterministic_and_80_10_10():
    ids = [str(i) for i in range(5000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    counts = Counter(first)
    assert abs(counts["train"] / 5000 - 0.8) < 0.02
    assert abs(counts["val"] / 5000 - 0.1) < 0.02
    assert abs(counts["test"] / 5000 - 0.1) < 0.02
    one = load_examples([str(FIXTURES / "coderm_sample.jsonl")], subset=20)
    two = load_examples([str(FIXTURES / "coderm_sample.jsonl")], subset=20)
    assert one == two
    assert sum(len(v) for v in one.values()) == 20


def test_coderm_schema_json_strings_lists_and_quality_fields():
    rows = [json.loads(line) for line in (FIXTURES / "coderm_sample.jsonl").read_text().splitlines()]
    scored = from_coderm_row(rows[0])
    assert "def test_1" in scored.tests and "def test_0" not in scored.tests
    unscored = from_coderm_row(rows[1])
    assert isinstance(rows[1]["unit_tests"], list)
    assert "def test_0" in unscored.tests
    assert scored.tests.startswith("from solution import *")
    assert scored.question == "Return the sum of two integers."
    assert from_coderm_row({"task_id": 1, "code_ground_truth": "x = 1", "unit_tests": "[]"}) is None
    both = from_coderm_row(rows[2], tests_per_task=2)
    assert "def test_0" in both.tests and "def test_1" in both.tests
    assert ensure_solution_import("from solution import f\n") == "from solution import f\n"


def test_records_schema_is_accepted_alongside_coderm():
    splits = load_examples([str(FIXTURES / "records_sample.jsonl"), str(FIXTURES / "coderm_sample.jsonl")], None)
    ids = {e.task_id for split in splits.values() for e in split}
    assert "rec-0" in ids and "1000" in ids and len(ids) == 30


def write_cpu_config(tmp_path: Path, hf_dir: Path, extra: str) -> Path:
    """A CPU training config (fp32 LoRA on the fixture rows, output in tmp_path/run) plus ``extra`` lines."""
    config = tmp_path / "train.toml"
    config.write_text(
        f'base = "{hf_dir}"\ndata = ["{FIXTURES / "coderm_sample.jsonl"}"]\noutput_dir = "{tmp_path / "run"}"\n'
        'quantization = "none"\ndtype = "fp32"\ngradient_accumulation = 2\nloss_chunk_tokens = 64\n' + extra
    )
    return config


@pytest.fixture(scope="module")
def tokenizer_gguf() -> Path:
    """The default model's GGUF, the tokenizer source of the tiny model."""
    return default_model_or_skip()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tokenizer_gguf):
    """A random 2-layer Qwen2 with the Qwen2.5 tokenizer, saved as HF folder and as F32 GGUF."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from trainer.gguf_io import tokenizer_size, write_model_gguf

    root = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_gguf.parent), gguf_file=tokenizer_gguf.name)
    config = Qwen2Config(
        vocab_size=tokenizer_size(tokenizer_gguf), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, rope_theta=1_000_000.0,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    hf_dir = root / "hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    gguf_path = write_model_gguf(model, tokenizer_gguf, root / "tiny-f32.gguf")
    return hf_dir, gguf_path, tokenizer


def test_tokenize_masks_the_prompt_and_drops_long_examples(tiny_model):
    _, _, tokenizer = tiny_model
    example = load_examples([str(FIXTURES / "records_sample.jsonl")], None)
    first = next(e for split in example.values() for e in split)
    item = tokenize(first, tokenizer, 2048)
    n_prompt = item["labels"].count(-100)
    assert 0 < n_prompt < len(item["input_ids"])
    assert item["labels"][n_prompt:] == item["input_ids"][n_prompt:]
    target = tokenizer.decode(item["input_ids"][n_prompt:])
    assert target.startswith("```python\nfrom solution import *") and target.endswith("```<|im_end|>")
    assert tokenize(first, tokenizer, n_prompt + 3) is None


def test_training_end_to_end_on_cpu_and_the_adapter_loads_in_llama_cpp(tiny_model, tmp_path):
    from llama_cpp import Llama
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainer.adapter_check import compare_shifts

    hf_dir, base_gguf, tokenizer = tiny_model
    config = write_cpu_config(
        tmp_path, hf_dir,
        "max_steps = 6\nmicro_batch_size = 2\neval_every = 3\nsave_every = 3\nlearning_rate = 0.01\n"
        "lora_r = 8\nlora_alpha = 16\n",
    )
    # Training runs from a checkout (the installed package is the plugin alone).
    result = subprocess.run([sys.executable, "-m", "trainer", "--config", str(config)], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6
    log = json.loads((run / "loss_log.json").read_text())
    assert [p["step"] for p in log["val"]] == [3, 6]
    assert log["train"][-1]["loss"] < log["train"][0]["loss"]
    assert (run / "loss.png").stat().st_size > 1000
    adapter = run / "adapter.gguf"
    assert adapter.read_bytes()[:4] == b"GGUF"

    llama = Llama(model_path=str(base_gguf), lora_path=str(adapter), n_ctx=256, verbose=False)
    out = llama.create_completion("def add(a, b):", max_tokens=5, temperature=0)
    assert out["usage"]["completion_tokens"] >= 1
    llama.close()

    base = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    for prompt in ("def add(a, b):\n    return a + b\n", "Write tests for reverse()."):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        comparison = compare_shifts(base_gguf, adapter, peft_model, ids)
        assert comparison.shift_norm_peft > 1e-3
        assert comparison.within("f32"), comparison


def test_gguf_adapter_converts_back_to_peft_and_starts_continued_training(tiny_model, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from trainer.config import load_train_config
    from trainer.gguf_io import read_lora_gguf, write_lora_gguf
    from trainer.train import build_model

    hf_dir, _, tokenizer = tiny_model
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    original = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                               task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in original.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)  # PEFT starts B at zero: make the adapter change the output
    original.save_pretrained(tmp_path / "peft")
    gguf_adapter = write_lora_gguf(tmp_path / "peft", 2, tmp_path / "adapter.gguf", "f32")

    converted = read_lora_gguf(gguf_adapter, tmp_path / "back")
    settings = json.loads((converted / "adapter_config.json").read_text())
    assert (settings["r"], settings["lora_alpha"]) == (4, 8.0)
    assert settings["target_modules"] == ["down_proj", "q_proj", "v_proj"]
    with pytest.raises(FileExistsError):
        read_lora_gguf(gguf_adapter, tmp_path / "back")
    with pytest.raises(ValueError, match="not a GGUF LoRA adapter"):
        read_lora_gguf(tiny_model[1], tmp_path / "not-an-adapter")

    ids = torch.tensor([tokenizer("def add(a, b):\n    return a + b", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = original.eval()(ids).logits
        fresh = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
        reloaded = PeftModel.from_pretrained(fresh, str(converted)).eval()(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()(ids).logits
    assert not torch.allclose(plain, expected, atol=1e-3)
    assert torch.allclose(reloaded, expected, atol=1e-5)

    # Continued training: the model starts at the GGUF adapter's weights, and they are trainable.
    config = load_train_config(write_cpu_config(tmp_path, hf_dir, f'init_adapter = "{gguf_adapter}"\n'))
    started = build_model(config, hf_dir).eval()
    with torch.no_grad():
        assert torch.allclose(started(ids).logits, expected, atol=1e-5)
    trainable = [n for n, p in started.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_the_shipped_adapter_converts_to_peft_and_back_unchanged(tmp_path):
    import gguf

    from trainer.gguf_io import read_lora_gguf, write_lora_gguf

    shipped = REPO / "pytest_utgen" / "adapters" / "utgen-1.5b-lora.gguf"
    peft_dir = read_lora_gguf(shipped, tmp_path / "peft")
    settings = json.loads((peft_dir / "adapter_config.json").read_text())
    assert (settings["r"], settings["lora_alpha"], len(settings["target_modules"])) == (8, 16.0, 7)
    back = write_lora_gguf(peft_dir, 28, tmp_path / "back.gguf", "f16")
    original = {t.name: t.data for t in gguf.GGUFReader(str(shipped)).tensors}
    again = {t.name: t.data for t in gguf.GGUFReader(str(back)).tensors}
    assert original.keys() == again.keys() and len(original) == 28 * 7 * 2
    assert all((original[name] == again[name]).all() for name in original)


def test_resume_continues_from_the_checkpoint(tiny_model, tmp_path):
    from trainer.config import load_train_config
    from trainer.train import train

    hf_dir, _, _ = tiny_model
    config_file = write_cpu_config(tmp_path, hf_dir, "eval_every = 2\nsave_every = 2\nexport_gguf = false\n")
    first = train(load_train_config(config_file, max_steps=2))
    assert first["steps"] == 2
    resumed = train(load_train_config(config_file, max_steps=4), resume=True)
    assert resumed["steps"] == 4
    log = json.loads((tmp_path / "run" / "loss_log.json").read_text())
    assert [p["step"] for p in log["train"]] == [1, 2, 3, 4]


def test_corpus_sampling_batches_resumes_and_counts_tokens(tiny_model, tmp_path):
    from trainer.corpus.problems import Problem, write_problems
    from trainer.corpus.sample import done_task_ids, sample

    hf_dir, _, _ = tiny_model
    problems = [Problem(f"toy-{i}", "toy", "solution", f"def f{i}(x):\n    return x + {i}\n" * (i + 1), "/")
                for i in range(5)]
    write_problems(problems, tmp_path / "problems.jsonl")
    out = tmp_path / "samples.jsonl"
    first = sample(tmp_path / "problems.jsonl", str(hf_dir), out, samples=2, max_new_tokens=4,
                   prompts_per_batch=2, time_limit=0.0)
    assert first["problems_sampled"] == 2 and first["problems_left"] == 3
    second = sample(tmp_path / "problems.jsonl", str(hf_dir), out, samples=2, max_new_tokens=4, batch_tokens=10)
    assert second["problems_sampled"] == 3 and second["problems_left"] == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10 and done_task_ids(out) == {p.task_id for p in problems}
    assert all(0 < row["tokens"] <= 4 for row in rows)
    for problem in problems:
        assert sorted(row["sample"] for row in rows if row["task_id"] == problem.task_id) == [0, 1]


def test_second_corpus_round_trains_a_sampler_on_round_one_and_samples_from_it(tiny_model, tmp_path):
    from trainer.corpus.problems import Problem, write_problems
    from trainer.corpus.rounds import second_round

    hf_dir, _, _ = tiny_model
    problems = []
    for i in range(3):
        code = f"def f{i}(x):\n    return x + {i}\n"
        (tmp_path / f"toy-{i}").mkdir()
        (tmp_path / f"toy-{i}" / "solution.py").write_text(code)
        problems.append(Problem(f"toy-{i}", "toy", "solution", code, str(tmp_path / f"toy-{i}")))
    write_problems(problems, tmp_path / "problems.jsonl")
    round1, round2 = tmp_path / "corpus", tmp_path / "corpus-r2"
    with pytest.raises(FileNotFoundError, match="build round 1 first"):
        second_round(tmp_path / "problems.jsonl", round1, round2, str(hf_dir), tmp_path / "none.toml")
    round1.mkdir()
    (round1 / "records.jsonl").write_text((FIXTURES / "records_sample.jsonl").read_text())
    config = write_cpu_config(tmp_path, hf_dir, "max_steps = 2\n")

    stats = second_round(tmp_path / "problems.jsonl", round1, round2, str(hf_dir), config,
                         per_problem=2, max_new_tokens=4, workers=1)
    summary = json.loads((round2 / "sampler" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["config"]["data"] == [str((round1 / "records.jsonl").resolve())]
    assert (round2 / "sampler" / "adapter" / "adapter_config.json").is_file()
    rows = [json.loads(line) for line in (round2 / "samples.jsonl").read_text().splitlines()]
    assert sorted((r["task_id"], r["sample"]) for r in rows) == [(f"toy-{i}", s) for i in range(3) for s in (0, 1)]
    assert all(r["max_new_tokens"] == 4 for r in rows)
    assert stats["sampled"] == 3 and stats["by_source"]["toy"]["samples"] == 6
    assert (round2 / "stats.json").is_file() and (round2 / "records.jsonl").is_file()

    trained_at = (round2 / "sampler" / "summary.json").stat().st_mtime_ns
    again = second_round(tmp_path / "problems.jsonl", round1, round2, str(hf_dir), config,
                         per_problem=2, max_new_tokens=4, workers=1)
    assert (round2 / "sampler" / "summary.json").stat().st_mtime_ns == trained_at
    assert len((round2 / "samples.jsonl").read_text().splitlines()) == 6 and again == stats


def test_grpo_steps_move_the_adapter_toward_rewarded_samples_resume_and_export(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from trainer.corpus.problems import Problem, write_problems
    from trainer.corpus.reward import FileScore
    from trainer.gguf_io import write_lora_gguf
    from trainer.grpo import GrpoConfig, train

    hf_dir, _, _ = tiny_model
    torch.manual_seed(2)
    start = get_peft_model(AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    start.save_pretrained(tmp_path / "start")
    init = write_lora_gguf(tmp_path / "start", 2, tmp_path / "start.gguf")
    problems = [Problem(f"toy-{i}", "toy", "solution", f"def f{i}(x):\n    return x + {i}\n", f"toy-{i}")
                for i in range(3)]
    write_problems(problems, tmp_path / "problems.jsonl")
    seen = []

    def by_position(problem, texts):
        # A reward that differs inside every group, so each step has a gradient (the execution reward is
        # tested in test_corpus; here: the update, the log, the state and the export).
        seen.append((problem.root, len(texts)))
        return [FileScore(float(i % 2)) for i in range(len(texts))]

    config = GrpoConfig(base=str(hf_dir), init_adapter=str(init), problems=str(tmp_path / "problems.jsonl"),
                        out=str(tmp_path / "run"), root_base=str(tmp_path), steps=3, problems_per_step=2, group=4,
                        max_new_tokens=5, learning_rate=1e-2, workers=2, micro_batch=3, time_limit=0.0)
    first = train(config, by_position)
    assert first["steps_done"] == 1  # the time limit: one step, then the state and the adapter as it stands
    assert Path(first["adapter_gguf"]).is_file()
    assert seen[:2] == [(str(tmp_path / "toy-0"), 4), (str(tmp_path / "toy-1"), 4)]
    after_one = load_file(tmp_path / "run" / "state" / "adapter" / "adapter_model.safetensors")
    initial = load_file(tmp_path / "start" / "adapter_model.safetensors")
    assert any(not torch.equal(after_one[name], initial[name]) for name in initial)

    config.time_limit = 600.0
    done = train(config, by_position)
    assert done["steps_done"] == 3 and Path(done["adapter_gguf"]).is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3]
    assert all(entry["grad_norm"] > 0 and entry["groups_flat"] == 0 for entry in log)
    assert all(entry["reward"] == pytest.approx(0.5) for entry in log)
    assert seen[2][0] == str(tmp_path / "toy-2") and seen[3][0] == str(tmp_path / "toy-0")  # the set wraps
