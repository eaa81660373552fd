"""Built-in word-level tokenizer of the tiny/synthetic presets (no download needed).

Its words: every word of the HICO-DET and V-COCO verbs, objects and prompts, and a list of common
English words for descriptions ("two people, one rides a horse ..."). The list is fixed in this file, so
token ids never depend on the vocabulary in use and a saved text encoder stays valid.
"""

from __future__ import annotations

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")

_HOI_WORDS = """
a adjust adjusting airplane an and apple assemble assembling at backpack ball banana baseball bat bear bed
bench bicycle bird block blocking blow blowing board boarding boat book bottle bowl break breaking broccoli
brush brushing bus buy buying cake car carrot carry carrying cat catch catching cell chair chase chasing
check checking clean cleaning clock computer control controlling cook cooking couch cow cup cut cutting
dining direct directing dog donut drag dragging dribble dribbling drier drink drinking drive driving dry
drying eat eating elephant exit exiting feed feeding fill filling fire flip flipping flush flushing fly
flying fork frisbee giraffe glass glove greet greeting grind grinding groom grooming hair handbag herd
herding hit hitting hold holding hop hopping horse hose hosing hot hug hugging hunt hunting hydrant inspect
inspecting install installing instr interaction jump jumping keyboard kick kicking kiss kissing kite knife
laptop lasso lassoing launch launching lay laying lick licking lie lift lifting light lighting load loading
look looking lose losing lying make making meter microwave milk milking motorcycle mouse move moving no obj
of on open opening operate operating orange oven pack packing paint painting park parking pay paying peel
peeling person pet petting phone photo pick picking pizza plant point pointing potted pour pouring pull
pulling push pushing race racing racket read reading refrigerator release releasing remote repair repairing
ride riding row rowing run running sail sailing sandwich scissors scratch scratching serve serving set
setting shear shearing sheep sign signing sink sip sipping sit sitting skateboard skateboarding ski skiing
skis slide sliding smell smelling snowboard snowboarding spin spinning spoon sports squeeze squeezing stab
stabbing stand standing stick sticking stir stirring stop stopping straddle straddling suitcase surf
surfboard surfing swing swinging table tag tagging talk talking teach teaching teddy tennis text texting
throw throwing tie toast toaster toasting toilet toothbrush traffic train training truck turn turning tv
tying type typing umbrella under up vase walk walking wash washing watch watching wave waving wear wearing
wield wielding wine with work working zebra zip zipping
"""

_COMMON_WORDS = """
the this that these those there here it its they them their he she his her him one two three four five six
seven eight nine ten several many some few any all both each every other another nobody nothing none
someone something people persons man men woman women boy girl child children kid kids adult group crowd
player rider is are was were be been being has have had do does did not nor but or so then while
who whom which what where when why how than as by for from in into onto out over off about above below
near next beside behind front back left right middle center top bottom side between among around across
along through toward towards away close far inside outside upon against of to on at with without while
rides ride holds kicks sits carries looks watches throws catches eats drinks uses plays stands walks runs
interacts interacting interact does looking playing using doing standing image picture scene shows showing
contains containing visible seen appears appear see sees can cannot could would will should may might also
only just still again very more most less least big small large little tall short long new old red green
blue yellow white black brown gray grey orange pink purple dark bright colorful indoor indoors outdoor
outdoors street road field grass park beach water snow sky room kitchen table floor wall background
foreground object objects thing things item items first second third last together alone apart
yes s
"""

_PUNCTUATION = ". , ; : ! ? ' \" ( ) - /"


def word_list() -> list[str]:
    """The tokenizer's words (special tokens excluded), in id order."""
    words: list[str] = []
    seen = set(SPECIAL_TOKENS)
    for word in (_HOI_WORDS + _COMMON_WORDS + _PUNCTUATION).split():
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def build_word_level_tokenizer(model_max_length: int = 64) -> PreTrainedTokenizerFast:
    """A lower-casing word-level tokenizer: ``[CLS] words [SEP]``, ids 0-3 = [PAD], [UNK], [CLS], [SEP].

    [SEP] ends every sequence, so a CLIP text encoder configured with ``eos_token_id=3`` pools it.
    """
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *word_list()])}
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        model_max_length=model_max_length,
    )


__all__ = ["SPECIAL_TOKENS", "build_word_level_tokenizer", "word_list"]
