"""callqa: answers to the qualification questionnaire and manager QA from sales calls."""

__version__ = "0.1.0"
