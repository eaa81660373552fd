"""clhoi: CL-HOI human-object interaction detection distilled from vision large language models."""

from .vocabulary import HOIVocabulary

__all__ = ["HOIVocabulary"]
