"""clhoi: CL-HOI human-object interaction detection distilled from vision large language models.

Importing the package registers CL-HOI with AutoConfig, AutoModel, AutoImageProcessor and AutoProcessor, and
marks its classes for `auto_map`, so saved folders also load with `trust_remote_code=True` where this
package is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor

from .configuration_clhoi import CLHOIConfig
from .image_processing_clhoi import CLHOIImageProcessor
from .modeling_clhoi import (
    CLHOIForInteractionDetection,
    CLHOIOutput,
    CLHOIPreTrainedModel,
    InteractionCognitionNetwork,
    VisualLinguisticTranslator,
)
from .pipeline_clhoi import HOIDetectionPipeline as HOIDetectionPipeline  # registers "hoi-detection"
from .processing_clhoi import CLHOIProcessor
from .tokenization_clhoi import build_word_level_tokenizer
from .visualize import visualize
from .vocabulary import HOIVocabulary

AutoConfig.register(CLHOIConfig.model_type, CLHOIConfig, exist_ok=True)
AutoModel.register(CLHOIConfig, CLHOIForInteractionDetection, exist_ok=True)
AutoImageProcessor.register(CLHOIConfig, image_processor_classes={"pil": CLHOIImageProcessor}, exist_ok=True)
AutoProcessor.register(CLHOIConfig, CLHOIProcessor, exist_ok=True)

CLHOIConfig.register_for_auto_class()
CLHOIForInteractionDetection.register_for_auto_class("AutoModel")
CLHOIImageProcessor.register_for_auto_class("AutoImageProcessor")
CLHOIProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "CLHOIConfig",
    "CLHOIForInteractionDetection",
    "CLHOIImageProcessor",
    "CLHOIOutput",
    "CLHOIPreTrainedModel",
    "CLHOIProcessor",
    "HOIVocabulary",
    "InteractionCognitionNetwork",
    "VisualLinguisticTranslator",
    "build_word_level_tokenizer",
    "HOIDetectionPipeline",
    "visualize",
]
