"""``--stage sft|dpo|kto|orpo`` and the preference methods' options (one config group of ``recipes/train.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chathuman_hf.core.cli import UsageError

STAGES = ("sft", "dpo", "kto", "orpo")
DPO_LOSSES = ("sigmoid", "ipo")
# What each preference stage trains on (the file prepare.py writes for it, chathuman_hf.data.preferences)
STAGE_DATA = {"dpo": "pairs", "orpo": "pairs", "kto": "ratings"}
STAGE_METHODS = {"dpo": "DPO (Rafailov et al., 2023)", "kto": "KTO (Ethayarajh et al., 2024)",
                 "orpo": "ORPO (Hong et al., 2024), reference-free"}


@dataclass
class PreferenceArguments:
    """Which training stage runs, and the preference methods' settings (TRL's names and defaults where it has them)."""

    stage: str = field(
        default="sft",
        metadata={"help": "sft: supervised fine-tuning on dialogues (default). dpo / orpo: learn from preference "
                  "pairs (prompt, chosen, rejected); kto: from rated replies (prompt, completion, 👍/👎 label), or "
                  "from pairs unpaired into 👍/👎. Start from an SFT output: --model_name_or_path outputs/sft.",
                  "choices": list(STAGES)},
    )
    beta: float = field(
        default=0.1,
        metadata={"help": "DPO/KTO: strength of the pull towards the reference model (TRL's beta); ORPO: weight of "
                  "the odds-ratio term (lambda in the paper; TRL's ORPO beta, use about 0.1)."},
    )
    loss_type: str = field(
        default="sigmoid",
        metadata={"help": "DPO loss: sigmoid (the DPO paper) or ipo (IPO, length-normalized squared loss).",
                  "choices": list(DPO_LOSSES)},
    )
    sft_weight: float = field(
        default=0.0,
        metadata={"help": "DPO: add the chosen replies' negative log-likelihood with this weight (TRL's "
                  "loss_type ['sigmoid', 'sft'], the RPO recipe); 0 = off."},
    )
    desirable_weight: float | None = field(
        default=None,
        metadata={"help": "KTO: weight of 👍 replies; default: set from the 👍/👎 counts so that "
                  "desirable_weight × n👍 / (undesirable_weight × n👎) = 1, as TRL recommends."},
    )
    undesirable_weight: float | None = field(
        default=None, metadata={"help": "KTO: weight of 👎 replies; default: set from the counts (see above)."}
    )
    precompute_ref_log_probs: bool = field(
        default=False,
        metadata={"help": "DPO/KTO, full fine-tune: compute the reference log-probabilities once before training, so "
                  "only one model is kept in memory (with --use_peft the reference is the SFT adapter on the same "
                  "base and no copy is made anyway)."},
    )
    padding_free: bool = field(
        default=True,
        metadata={"help": "DPO: run chosen and rejected rows packed end to end without padding (same loss and "
                  "metrics as TRL's padded DPOTrainer, less compute); false: TRL's padded forwards. KTO and ORPO "
                  "are always padded."},
    )

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UsageError(f"--stage {self.stage!r}: expected one of {', '.join(STAGES)}")
        if self.loss_type not in DPO_LOSSES:
            raise UsageError(f"--loss_type {self.loss_type!r}: expected one of {', '.join(DPO_LOSSES)}")
        if self.beta <= 0:
            raise UsageError(f"--beta must be > 0, got {self.beta}")
        if self.sft_weight < 0:
            raise UsageError(f"--sft_weight must be >= 0, got {self.sft_weight}")
        for name in ("desirable_weight", "undesirable_weight"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"--{name} must be > 0, got {value}")

    @property
    def preference(self) -> bool:
        """True for a preference stage (dpo, kto, orpo)."""
        return self.stage != "sft"


def kto_weights(desirable: int, undesirable: int, args: PreferenceArguments) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight): the user's, or from the counts so that λD·nD / (λU·nU) = 1 (TRL's
    recommended range is [1, 4/3]); the smaller class is weighted up and the other keeps 1."""
    if not desirable or not undesirable:
        raise ValueError(f"--stage kto needs both 👍 and 👎 replies; the training data has {desirable} 👍 and "
                         f"{undesirable} 👎. Add rated replies of the missing kind or use --stage dpo on pairs.")
    if args.desirable_weight is not None or args.undesirable_weight is not None:
        return args.desirable_weight or 1.0, args.undesirable_weight or 1.0
    if desirable >= undesirable:
        return 1.0, round(desirable / undesirable, 4)
    return round(undesirable / desirable, 4), 1.0
