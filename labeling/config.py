"""The Label Studio labelling config, generated from a questionnaire.

One project per questionnaire. The annotator sees the recording with its timed transcript
(paragraphs synchronised with the audio) and can:

* draw or correct speaker regions AGENT/CLIENT on the audio (``speaker``),
* select each question's answer span in the client's words (``answer``, one label per
  question id) and type its normalised value into the region's ``value`` box,
* tick the manager's errors (``errors``) and the call type (``call_type``),
* enter the NPS score (``nps``) and the callback time (``callback``) where the call has them,
* leave a note (``notes``).

Tag names and every label value are one namespace for the annotator and for our export:
a question id that repeats another label (a speaker, an error id, a call type) or a tag name
is refused, because the annotator could not tell them apart.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from callqa.errors import ConfigError
from callqa.schemas import CallType, ErrorId, Questionnaire, Speaker

AUDIO = "audio"
TRANSCRIPT = "transcript"
SPEAKER = "speaker"
ANSWER = "answer"
VALUE = "value"
ERRORS = "errors"
CALL_TYPE = "call_type"
NPS = "nps"
CALLBACK = "callback"
NOTES = "notes"
TAG_NAMES = (AUDIO, TRANSCRIPT, SPEAKER, ANSWER, VALUE, ERRORS, CALL_TYPE, NPS, CALLBACK, NOTES)
SPEAKERS = (Speaker.AGENT.value, Speaker.CLIENT.value)
SPEAKER_COLOURS = {Speaker.AGENT.value: "#1f77b4", Speaker.CLIENT.value: "#ff7f0e"}
# distinct, readable label colours (tab20), cycled for long questionnaires
PALETTE = (
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#c7c7c7",
)


def reserved_names() -> dict[str, str]:
    """Lower-cased label values and tag names a question id may not take, with what owns each."""
    names = {t: "a tag name" for t in TAG_NAMES}
    names |= {s.lower(): "a speaker label" for s in SPEAKERS}
    names |= {e.value: "a manager-error label" for e in ErrorId}
    names |= {c.value: "a call-type label" for c in CallType}
    return names


def check_questionnaire(questionnaire: Questionnaire) -> None:
    """Refuse question ids that clash with another label or tag of the config."""
    reserved = reserved_names()
    clashes = [f"{q.id!r} is {reserved[q.id.lower()]}" for q in questionnaire.questions if q.id.lower() in reserved]
    if clashes:
        raise ConfigError(
            f"questionnaire {questionnaire.name!r}: question ids clash with labelling-config names: "
            + "; ".join(clashes)
            + " — rename the question"
        )


def _attrs(**attrs: object) -> str:
    return " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def label_config(questionnaire: Questionnaire) -> str:
    """The XML config for ``questionnaire`` (deterministic: same questionnaire, same text)."""
    check_questionnaire(questionnaire)
    speakers = "\n".join(f"      <Label {_attrs(value=s, background=SPEAKER_COLOURS[s])}/>" for s in SPEAKERS)
    questions = "\n".join(
        f"      <Label {_attrs(value=q.id, hint=q.text, background=PALETTE[k % len(PALETTE)])}/>"
        for k, q in enumerate(questionnaire.questions)
    )
    errors = "\n".join(f"      <Choice {_attrs(value=e.value)}/>" for e in ErrorId)
    call_types = "\n".join(f"      <Choice {_attrs(value=c.value)}/>" for c in CallType)
    title = f"Questionnaire: {questionnaire.name}"
    paragraphs = _attrs(
        name=TRANSCRIPT, value="$turns", layout="dialogue", nameKey="speaker", textKey="text", sync=AUDIO
    )
    callback = _attrs(
        name=CALLBACK, toName=TRANSCRIPT, maxSubmissions=1, editable="true", placeholder="e.g. завтра в 10:00"
    )
    return f"""<View>
  <Header {_attrs(value=title)}/>
  <Audio {_attrs(name=AUDIO, value="$audio", sync=TRANSCRIPT, hotkey="space")}/>
  <View style="margin-bottom: 8px">
    <Labels {_attrs(name=SPEAKER, toName=AUDIO, choice="single")}>
{speakers}
    </Labels>
  </View>
  <ParagraphLabels {_attrs(name=ANSWER, toName=TRANSCRIPT)}>
{questions}
  </ParagraphLabels>
  <Paragraphs {paragraphs}/>
  <View visibleWhen="region-selected" whenTagName={quoteattr(ANSWER)}>
    <Header value="Normalised value of the selected answer (empty if none)" size="6"/>
    <TextArea {_attrs(name=VALUE, toName=TRANSCRIPT, perRegion="true", maxSubmissions=1, editable="true")}/>
  </View>
  <Header value="Manager errors" size="5"/>
  <Choices {_attrs(name=ERRORS, toName=TRANSCRIPT, choice="multiple", showInline="true")}>
{errors}
  </Choices>
  <Header value="Call type" size="5"/>
  <Choices {_attrs(name=CALL_TYPE, toName=TRANSCRIPT, choice="single-radio", showInline="true")}>
{call_types}
  </Choices>
  <Header value="NPS (0-10) and callback time, where the call has them" size="5"/>
  <Number {_attrs(name=NPS, toName=TRANSCRIPT, min=0, max=10)}/>
  <TextArea {callback}/>
  <Header value="Notes for the ML team" size="5"/>
  <TextArea {_attrs(name=NOTES, toName=TRANSCRIPT, maxSubmissions=1, editable="true", rows=2)}/>
</View>
"""
