"""The training-mix builder on a tiny hand-built run directory (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import load_from_disk

from clca.errors import DataError
from clca.records import Character, CheckpointEntry, Episode, Intent, Judgement, LiveEpisode, Scenario, Turn
from clca.rundir import RunDir
from clca.training.config import MixConfig
from clca.training.mix import OPENING_CUE, build_mix

SECRET_A, GOAL_A = "Li hid the broken vase", "get Wei to lend money"
SECRET_B, GOAL_B = "Wei is secretly moving abroad", "avoid lending money"


def _scenario(i: int) -> Scenario:
    return Scenario(
        id=f"sc{i}",
        seed_id=f"seed{i}",
        culture="China",
        setting=f"A teahouse in Suzhou, afternoon {i}.",
        relationship="friends",  # normalised to "friend"
        characters=[
            Character(
                first_name="Li",
                last_name="Na",
                age=30,
                occupation="teacher",
                background="Li teaches maths.",
                secret=SECRET_A,
                goal=GOAL_A,
            ),
            Character(
                first_name="Wei",
                last_name="Zhang",
                age=35,
                occupation="engineer",
                background="Wei builds bridges.",
                secret=SECRET_B,
                goal=GOAL_B,
            ),
        ],
    )


def _episode(i: int, culture: str = "China", stop: str = "leave") -> Episode:
    turns = [
        Turn(speaker=0, name="Li Na", action="speak", text=f"Hello Wei, ep {i}."),
        Turn(speaker=0, name="Li Na", action="non-verbal", text="pours tea"),
        Turn(speaker=1, name="Wei Zhang", action="speak", text="Thank you, Li."),
        Turn(speaker=0, name="Li Na", action="none", text=""),
        Turn(speaker=1, name="Wei Zhang", action="speak", text="How is school?"),
        Turn(speaker=0, name="Li Na", action="speak", text="Busy, as always."),
        Turn(speaker=1, name="Wei Zhang", action="leave", text=""),
    ]
    return Episode(
        id=f"ep{i}",
        scenario_id=f"sc{i}",
        culture=culture,
        sample=0,
        seed=i,
        model="m",
        turns=turns,
        stop_reason=stop,  # type: ignore[arg-type]
    )


def make_run_dir(tmp_path: Path) -> RunDir:
    """Ten kept China episodes (ep0..ep9) + one unkept, one of another culture, and one still in progress (in
    the simulation's checkpoint, so never in the mix)."""
    run = RunDir(tmp_path)
    run.scenario_store().extend(_scenario(i) for i in range(13))
    eps = [_episode(i) for i in range(10)] + [_episode(10), _episode(12, "Japan")]
    run.episode_store().extend(eps)
    live = LiveEpisode.model_validate({**_episode(11).model_dump(), "stop_reason": "running"})
    run.write_checkpoint({}, [CheckpointEntry(episode=live)])
    eps.append(live)
    run.judgement_store().extend(
        Judgement(id=e.id, episode_id=e.id, culture=e.culture, model="j", keep=(e.id != "ep10")) for e in eps
    )
    intents = []
    for e in eps:
        for ti in (0, 2, 5):  # ti 4 has no intent: folded into the next user message
            intents.append(
                Intent(
                    id=f"{e.id}:{ti}",
                    episode_id=e.id,
                    culture=e.culture,
                    turn_index=ti,
                    speaker=e.turns[ti].speaker,
                    name=e.turns[ti].name,
                    intent=f"intent of turn {ti}",
                )
            )
    run.intent_store().extend(intents)
    return run


@pytest.fixture()
def run_dir(tmp_path: Path) -> RunDir:
    return make_run_dir(tmp_path)


def _rows(path: Path, split: str) -> list[dict]:
    dd = load_from_disk(str(path))
    return list(dd[split]) if split in dd else []


def test_roles_and_system_prompts(run_dir: RunDir) -> None:
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0))
    rows = _rows(res.path, "train")
    p1 = next(r for r in rows if r["task"] == "dialogue_p1" and r["episode_id"] == "ep3")["messages"]
    p2 = next(r for r in rows if r["task"] == "dialogue_p2" and r["episode_id"] == "ep3")["messages"]
    roles1 = [m["role"] for m in p1]
    assert roles1 == ["system", "user", "assistant", "user", "assistant"]
    assert p1[1]["content"] == OPENING_CUE
    assert p1[2]["content"].startswith("Hello Wei") and p1[2]["content"].endswith("\n[non-verbal] pours tea")
    assert p1[3]["content"] == "Thank you, Li.\nHow is school?"  # merged, 'none' turn dropped
    assert p1[4]["content"] == "Busy, as always."  # the trailing user 'leave' is dropped
    assert [m["role"] for m in p2] == ["system", "user", "assistant", "user", "assistant"]
    assert p2[1]["content"] == p1[2]["content"]  # person 1's opening is the first user message
    assert p2[-1]["content"] == "[leaves the conversation]"
    s1, s2 = p1[0]["content"], p2[0]["content"]
    assert s1.endswith(
        "Imagine you are Li Na, your task is to act and speak like Li Na, a member of the Chinese culture."
    )
    assert s2.endswith(
        "Imagine you are Wei Zhang, your task is to act and speak like Wei Zhang, a member of the Chinese culture."
    )
    assert "Occupation: teacher" in s1 and "Background: Wei builds bridges." not in s1  # own card only
    assert "Background: Wei builds bridges." in s2 and "Li teaches maths." not in s2
    for s in (s1, s2):
        assert "Li Na and Wei Zhang are friends." in s  # the relationship reads as a sentence
        for private in (SECRET_A, SECRET_B, GOAL_A, GOAL_B):
            assert private not in s


def test_intent_part_format(run_dir: RunDir) -> None:
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0))
    msgs = next(r for r in _rows(res.path, "train") if r["task"] == "intent")["messages"]
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert msgs[1]["content"].startswith("Li Na: Hello Wei")
    assert msgs[2]["content"] == "Intent: intent of turn 0"
    assert msgs[3]["content"] == "Li Na: [non-verbal] pours tea\nWei Zhang: Thank you, Li."
    assert msgs[5]["content"] == "Wei Zhang: How is school?\nLi Na: Busy, as always."  # no-intent turn folded
    assert msgs[6]["content"] == "Intent: intent of turn 5"
    sysm = msgs[0]["content"]
    assert "There are two participants in this conversation, Li Na and Wei Zhang." in sysm
    assert "social or cultural expectations of Chinese culture in a short sentence." in sysm
    for private in (SECRET_A, SECRET_B, GOAL_A, GOAL_B):
        assert private not in sysm


def test_exclusions_split_and_stats(run_dir: RunDir) -> None:
    """One episode per scenario here: 20% of the scenarios -> 2 validation episodes, seeded."""
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.2), seed=3)
    assert res.episodes_total == 11 and res.episodes_used == 10
    assert res.excluded == {"not_kept_by_judge": 1}
    train, val = _rows(res.path, "train"), _rows(res.path, "validation")
    tr_eps, va_eps = {r["episode_id"] for r in train}, {r["episode_id"] for r in val}
    assert len(va_eps) == 2 and len(tr_eps) == 8 and not tr_eps & va_eps
    assert tr_eps | va_eps == {f"ep{i}" for i in range(10)}
    assert (res.path / "mix_stats.json").exists()
    # seeded: same seed -> same split, another seed -> (here) another split
    again = build_mix(run_dir, "China", MixConfig(val_fraction=0.2), seed=3)
    assert {r["episode_id"] for r in _rows(again.path, "validation")} == va_eps
    other = build_mix(run_dir, "China", MixConfig(val_fraction=0.2), seed=4)
    assert {r["episode_id"] for r in _rows(other.path, "validation")} != va_eps


def test_split_keeps_each_scenario_in_one_split(run_dir: RunDir) -> None:
    """With two role-play samples per scenario, the split is by scenario: both conversations of a scenario land
    in the same split (seeded), and val_fraction counts scenarios."""
    second = [_episode(i).model_copy(update={"id": f"ep{i}-s1", "sample": 1}) for i in range(10)]
    run_dir.episode_store().extend(second)
    run_dir.judgement_store().extend(
        Judgement(id=e.id, episode_id=e.id, culture=e.culture, model="j", keep=True) for e in second
    )
    cfg = MixConfig(val_fraction=0.2, ablation="dialogue_only")
    splits: list[set[str]] = []
    for seed in range(6):
        res = build_mix(run_dir, "China", cfg, seed=seed)
        train, val = _rows(res.path, "train"), _rows(res.path, "validation")
        tr_eps, va_eps = {r["episode_id"] for r in train}, {r["episode_id"] for r in val}
        assert not tr_eps & va_eps and len(tr_eps | va_eps) == 20
        scenario = {e: e.split("-")[0].replace("ep", "sc") for e in tr_eps | va_eps}
        assert not {scenario[e] for e in tr_eps} & {scenario[e] for e in va_eps}  # no scenario straddles
        assert len({scenario[e] for e in va_eps}) == 2 and len(va_eps) == 4  # 20% of 10 scenarios, 2 samples
        assert res.episodes_validation == 4 and res.episodes_train == 16
        splits.append(va_eps)
    again = build_mix(run_dir, "China", cfg, seed=5)
    assert {r["episode_id"] for r in _rows(again.path, "validation")} == splits[5]  # seeded
    assert len({frozenset(s) for s in splits}) > 1  # and the seed matters


def test_ratios_and_ablations(run_dir: RunDir) -> None:
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0))
    assert res.train_by_task == {"dialogue_p1": 10, "dialogue_p2": 10, "intent": 10}
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0, ratio_intent=2.0))
    assert res.train_by_task == {"dialogue_p1": 10, "dialogue_p2": 10, "intent": 20}
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0, ratio_intent=0.5, max_examples=10))
    assert res.train_by_task == {"dialogue_p1": 4, "dialogue_p2": 4, "intent": 2}
    d = build_mix(run_dir, "China", MixConfig(val_fraction=0.0, ablation="dialogue_only"))
    assert d.path == run_dir.mix_dir("China", "dialogue_only") and d.path.name == "china--dialogue_only"
    assert set(d.train_by_task) == {"dialogue_p1", "dialogue_p2"}
    i = build_mix(run_dir, "China", MixConfig(val_fraction=0.0, ablation="intent_only"))
    assert set(i.train_by_task) == {"intent"}


def test_leakage_flagged_episodes_are_excluded(run_dir: RunDir, data_dir: Path) -> None:
    """Episodes quoting WVS question wording (a later record of the same id replaces the first) are left out."""
    leak = "As the survey asks, how important is family in your life? Would you say it is very important?"
    with run_dir.episodes_file.open("a", encoding="utf-8") as fh:
        for i in (1, 2):
            ep = _episode(i)
            ep.turns[0].text = leak
            fh.write(ep.model_dump_json() + "\n")
    res = build_mix(run_dir, "China", MixConfig(val_fraction=0.0))
    assert res.excluded["leakage_flagged"] == 2
    assert not {"ep1", "ep2"} & {r["episode_id"] for r in _rows(res.path, "train")}


def test_clear_errors(run_dir: RunDir) -> None:
    run_dir.intents_file.unlink()
    with pytest.raises(DataError, match=r"intents.jsonl is missing.*dialogue_only"):
        build_mix(run_dir, "China")
    assert build_mix(run_dir, "China", MixConfig(ablation="dialogue_only")).train_examples > 0
    run_dir.judgements_file.unlink()
    with pytest.raises(DataError, match=r"judgements.jsonl is missing.*clca judge"):
        build_mix(run_dir, "China", MixConfig(ablation="dialogue_only"))
    res = build_mix(
        run_dir, "China", MixConfig(ablation="dialogue_only", require_judge=False, val_fraction=0)
    )
    assert res.episodes_used == 11  # the unkept one is back in
    with pytest.raises(DataError, match="no episodes for culture 'Germany'"):
        build_mix(run_dir, "Germany", MixConfig(ablation="dialogue_only"))


def test_cli_mix(run_dir: RunDir, capsys: pytest.CaptureFixture[str]) -> None:
    from clca.cli import main

    assert main(["mix", "--run", str(run_dir.path), "--culture", "China", "--ablation", "intent_only"]) == 0
    assert (run_dir.path / "mix" / "china--intent_only" / "mix_stats.json").exists()
    assert "intent" in capsys.readouterr().out
    run_dir.judgements_file.unlink()
    assert main(["mix", "--run", str(run_dir.path), "--culture", "China"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "judgements.jsonl is missing" in err and len(err.splitlines()) == 1
    assert main(["mix", "--run", str(run_dir.path), "--culture", "China", "--ablation", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "--ablation" in err and "dialogue_only" in err and len(err.strip().splitlines()) == 1


def test_volume_matching_swaps_then_trims() -> None:
    """The control's split keeps its size and task shares, reaches the target tokens within 5% by swapping
    examples within a task, and, when the pool is too long, by shortening the longest examples."""
    from clca.training.mix import approx_tokens, match_volume, trim_to_volume

    def row(task: str, n_pairs: int, width: int) -> dict[str, object]:
        msgs = [{"role": "system", "content": "s" * 40}]
        for k in range(n_pairs):
            msgs += [
                {"role": "user", "content": "u" * width},
                {"role": "assistant", "content": f"{k}" * width},
            ]
        return {"task": task, "messages": msgs, "tokens": approx_tokens(msgs)}  # type: ignore[arg-type]

    pool = {
        "dialogue_p1": [row("dialogue_p1", 2, w) for w in (40, 80, 160, 320)],
        "intent": [row("intent", 1, w) for w in (20, 200)],
    }
    rows = [pool["dialogue_p1"][0], pool["dialogue_p1"][0], pool["intent"][0]]
    tok = lambda r: int(r["tokens"])  # noqa: E731
    target = 600
    out = match_volume(rows, pool, tok, target)  # type: ignore[arg-type]
    assert len(out) == 3 and [r["task"] for r in out] == ["dialogue_p1", "dialogue_p1", "intent"]
    assert abs(sum(map(tok, out)) - target) <= 0.05 * target
    # a pool of long conversations only: swapping cannot get down to the target, trimming does
    long_pool = {"dialogue_p1": [row("dialogue_p1", 4, 400)]}
    rows = [long_pool["dialogue_p1"][0]] * 3
    swapped = match_volume(rows, long_pool, tok, 900)  # type: ignore[arg-type]
    assert sum(map(tok, swapped)) > 1.05 * 900
    trimmed = trim_to_volume(swapped, approx_tokens, 900)  # type: ignore[arg-type]
    assert len(trimmed) == 3 and abs(sum(map(tok, trimmed)) - 900) <= 0.05 * 900
    assert all(m[-1]["role"] == "assistant" for m in (r["messages"] for r in trimmed))  # type: ignore[index]


def test_matched_mix_has_exactly_the_target_examples(tmp_path: Path) -> None:
    """match=(examples, tokens): exactly that many training examples even when the task shares do not divide
    them, and the tokens within 5%."""
    run = make_run_dir(tmp_path / "run")
    free = build_mix(run, "China", MixConfig(val_fraction=0.0))
    for n in (4, 5, 7):
        target = round(free.train_tokens * n / free.train_examples)
        res = build_mix(run, "China", MixConfig(val_fraction=0.0), match=(n, target))
        assert res.train_examples == n and res.target_examples == n
        assert (
            sum(res.train_by_task.values()) == n
            and max(res.train_by_task.values()) - min(res.train_by_task.values()) <= 1
        )
        assert abs(res.train_tokens - target) <= 0.05 * target
