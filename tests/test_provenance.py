"""The base model's license and the data sources' provenance shown on the model card."""

from __future__ import annotations

from chathuman_hf.publishing.provenance import base_model_license, grouped_sources


def test_license_from_scratch_known_hub_model_local_card_or_other(tmp_path):
    assert base_model_license(None) == "apache-2.0"
    assert base_model_license("skt/kogpt2-base-v2") == "cc-by-nc-sa-4.0"
    carded = tmp_path / "carded"
    carded.mkdir()
    (carded / "README.md").write_text("---\nlicense: mit\nlanguage: [ko]\n---\n# base\n", encoding="utf-8")
    assert base_model_license(str(carded)) == "mit"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "README.md").write_text("# no front matter\n", encoding="utf-8")
    assert base_model_license(str(bare)) == "other"
    assert base_model_license("someone/unknown-model") == "other"


def test_many_files_of_one_folder_are_summed_and_each_source_keeps_its_provenance():
    sources = {f"/dumps/aihub/{i}.json": 10 + i for i in range(4)}
    sources |= {"/chats/kakao.txt": 7, "sample_data/chat.jsonl": 3, "/data/ChatbotData.csv": 5, "/x/mine.jsonl": 2}
    files = {src: {"format": "aihub_sns"} for src in sources if "aihub" in src}
    files |= {"/chats/kakao.txt": {"format": "kakao"}, "/data/ChatbotData.csv": {"format": "qa_table"},
              "/x/mine.jsonl": {"format": "jsonl"}, "sample_data/chat.jsonl": {"format": "jsonl"}}
    assert grouped_sources(sources, files) == [
        ("/chats/kakao.txt", "kakao", 7, "KakaoTalk export; make sure every participant agreed"),
        ("/data/ChatbotData.csv", "qa_table", 5, "songys/Chatbot_data (MIT)"),
        ("/dumps/aihub/*", "aihub_sns", 46, "AIHub (aihub.or.kr); AIHub's terms of use apply, not redistributable"),
        ("/x/mine.jsonl", "jsonl", 2, "user-provided file"),
        ("sample_data/chat.jsonl", "jsonl", 3, "embedded sample written by the chathuman_hf authors (Apache-2.0)"),
    ]
