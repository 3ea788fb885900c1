"""The embedded sample and the real ChatbotData.csv load completely."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from chathuman_hf.data import DataReport, load_dialogues


def test_embedded_sample_loads() -> None:
    report = DataReport()
    dataset = load_dialogues(report=report)
    assert len(dataset) >= 150
    by_file = Counter(source.split("/")[1] for source in dataset["source"])
    assert set(by_file) >= {
        "chat.jsonl",
        "aihub_summary.json",
        "aihub_sns.json",
        "aihub_topic",
        "kakao_pc.txt",
        "qa.csv",
    }
    assert all(n > 0 for n in by_file.values())
    assert report.total_kept == len(dataset)
    assert report.files["sample_data/kakao_pc.txt"]["format"] == "kakao"
    assert report.dropped["photo_utterance"] > 0
    for row in dataset:
        roles = [m["role"] for m in row["messages"] if m["role"] != "system"]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        assert all(m["content"] and "#@" not in m["content"] for m in row["messages"])


def test_kakao_sample_uses_manifest_assistant() -> None:
    dataset = load_dialogues(report=DataReport())
    kakao = dataset.filter(lambda row: row["source"] == "sample_data/kakao_pc.txt")
    assert len(kakao) > 0
    assert warnings_free_roles(kakao)


def warnings_free_roles(dataset) -> bool:
    return all(row["messages"][0]["role"] == "user" and row["messages"][-1]["role"] == "assistant" for row in dataset)


def test_chatbot_data_csv_complete(chatbot_csv: Path) -> None:
    report = DataReport()
    dataset = load_dialogues(chatbot_csv, report=report)
    assert len(dataset) == 11823
    assert dict(report.dropped) == {}
    assert report.sources == {str(chatbot_csv): 11823}
    assert dataset[0]["messages"] == [
        {"role": "user", "content": "12시 땡!"},
        {"role": "assistant", "content": "하루가 또 가네요."},
    ]
