"""Synthetic labelled calls for bootstrapping training: a generator and a raw-ASR renderer."""

from callqa.synthetic.asr import asr_text, render_asr
from callqa.synthetic.generator import generate_call, generate_calls, is_synthetic, volunteered_questions

__all__ = ["asr_text", "generate_call", "generate_calls", "is_synthetic", "render_asr", "volunteered_questions"]
