#!/usr/bin/env python3
"""Builds the oracle data for Tests/TokenizersTests (the real T5 / CLIP files cannot be fetched here).

What it writes under Tests/TokenizersTests/Resources/:
  t5_tiny/spiece.model         a small sentencepiece unigram model trained here with the nmt_nfkc rule (as T5),
                               pad 0, </s> 1, <unk> 2, no bos (T5's layout)
  t5_tiny/tokenizer.json       transformers' T5Tokenizer built from that spiece.model, saved
  t5_bytes/spiece.model        a smaller unigram model with byte_fallback and no normaliser (identity rule)
  t5_bytes/tokenizer.json      the same through transformers' converter (byte_fallback Unigram)
  tokenizer_oracle.json.gz     (gzip) the test set and the expected ids from every library:
    t5_tiny.sentencepiece[i]        SentencePieceProcessor(t5_tiny).encode(text) + [eos]
    t5_tiny.variants[name]          {normalizer, pre_tokenizer} patches of t5_tiny/tokenizer.json (the formats that
                               T5 tokenizer.json files come in), the ids tokenizers.Tokenizer gives for each
                               ("ids") and the ids transformers 5's T5Tokenizer.from_pretrained gives on a folder
                               holding only that tokenizer.json ("transformers5_ids": it keeps the vocab and
                               charsmap but rebuilds its own normalizer / pre-tokenizer)
    t5_tiny.transformers_256[i]     transformers T5Tokenizer(text, padding="max_length", max_length=256, truncation=True)
    t5_bytes.*                 the same for the byte-fallback model
    clip.open_clip[i]          open_clip 2.29.0 SimpleTokenizer(text) (context 77, ftfy 6.3.1)
    clip.open_clip_no_fix_encoding[i]
                               the same with ftfy.fix_text(..., fix_encoding=False): the Swift port leaves
                               ftfy's mojibake repair out, so it must match this list exactly
    clip.transformers_pad_eos / clip.transformers_pad_bang
                               transformers CLIPTokenizer(text, padding="max_length", max_length=77,
                               truncation=True) from vocab.json/merges.txt built out of the open_clip merges
                               (the same construction as CLIPTokenizerTests.makeHFFolder), with pad_token
                               "<|endoftext|>" (FLUX) and "!" (SD2 / MVDream, OpenCLIP-H)
    clip.transformers_decoder_normalized
                               the same with an added_tokens_decoder marking the two specials normalized (the
                               openai/clip-vit-large-patch14 tokenizer_config layout)

Run with a venv holding: sentencepiece tokenizers transformers ftfy==6.3.1 regex protobuf, and the open_clip 2.29.0
wheel unpacked (pip download --no-deps open_clip_torch==2.29.0; unzip) at OPEN_CLIP_DIR (default
/tmp/ocwheel/open_clip). torch is not needed: open_clip's tokenizer.py is loaded with a stub torch module that is
only touched by the tensor padding, which this script does itself exactly as SimpleTokenizer.__call__ does.
"""
import gzip
import importlib.util
import io
import json
import os
import random
import sys
import tempfile
import types

import sentencepiece as spm
import tokenizers
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "Tests", "TokenizersTests", "Resources")
OPEN_CLIP_DIR = os.environ.get("OPEN_CLIP_DIR", "/tmp/ocwheel/open_clip")
FIXTURE_CASES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "openclip", "tokenizer_cases.json")
if not os.path.exists(FIXTURE_CASES):
    FIXTURE_CASES = "/work/shared/fixtures/openclip/tokenizer_cases.json"


# --------------------------------------------------------------------------------------------------------------
# Training text for the tiny sentencepiece models: prompt-like English plus a little of other scripts, so the
# model has multi-character pieces for common words and single characters for the rest.
def training_corpus(seed=17):
    rnd = random.Random(seed)
    adjectives = ("red blue green golden wooden metal rusty ancient modern tiny huge shiny matte glossy detailed "
                  "low-poly realistic cartoon futuristic medieval broken glowing transparent fluffy soft sharp "
                  "old new dark bright colorful striped spotted carved polished").split()
    nouns = ("chair table lamp sword shield dragon castle house tree flower car robot cat dog bird ship rocket "
             "mug teapot bottle helmet boot guitar piano clock statue fountain tower bridge boat horse crown "
             "ring book candle barrel crate chest key door window mushroom cactus skull bone apple banana").split()
    extras = ("with on in of and a an the made from standing next to under over inside covered by "
              "highly very quite 3d model render object asset game ready 4k 8k textured").split()
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ar", "en", "ion", "ing")]
    lines = []
    for _ in range(6000):
        words = []
        for _ in range(rnd.randint(3, 14)):
            pick = rnd.random()
            words.append(rnd.choice(adjectives if pick < 0.35 else nouns if pick < 0.7 else extras))
        line = " ".join(words)
        if rnd.random() < 0.2:
            line = line.capitalize()
        if rnd.random() < 0.15:
            line += rnd.choice([".", "!", "?", ",", ";"])
        if rnd.random() < 0.1:
            line += " " + str(rnd.randint(0, 2025))
        if rnd.random() < 0.5:  # made-up words from syllables, for a wider spread of pieces
            line += " " + "".join(rnd.choice(syllables) for _ in range(rnd.randint(1, 4)))
        lines.append(line)
    multilingual = [
        "café crème brûlée naïve résumé façade über straße größe",
        "Привет мир как дела хорошо спасибо красный стул",
        "日本の寺院 東京 大阪 京都 赤い椅子 木のテーブル",
        "北京烤鸭 上海 红色的椅子 木头桌子",
        "Γειά σου κόσμε κόκκινη καρέκλα",
        "안녕하세요 빨간 의자 나무 테이블",
        "مرحبا بالعالم كرسي أحمر",
        "שלום עולם כיסא אדום",
        "नमस्ते दुनिया लाल कुर्सी",
        "สวัสดีชาวโลก เก้าอี้สีแดง",
        "numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 42% $19.99 #1 @home",
        "punctuation ! ? . , ; : ' \" ( ) [ ] { } < > / \\ | - _ + = * & ^ % $ # @ ~ `",
    ]
    for _ in range(40):
        lines.extend(multilingual)
    return lines


# --------------------------------------------------------------------------------------------------------------
# The test set: the 41 validator fixture prompts plus cases for the normalisers, whitespace, special tokens,
# truncation and the unknown-character paths.
def test_texts():
    fixture = [c["text"] for c in json.load(open(FIXTURE_CASES))["cases"]]
    long_prompt = ("a highly detailed photorealistic 3d model of an ancient stone fountain in the middle of a busy "
                   "medieval market square, surrounded by wooden stalls selling fruit, vegetables, bread and cheese, "
                   "with pigeons on the rim and moss growing in the cracks, warm afternoon light, ")
    extra = [
        # whitespace
        "   leading spaces", "trailing spaces   ", "a  b   c    d", "tab\there", "new\nline", "crlf\r\nline",
        "form\ffeed", "vertical\vtab", "nbsp\u00a0space", "ideographic\u3000space", "en\u2002em\u2003thin\u2009",
        "zero\u200bwidth", "line\u2028sep", "para\u2029sep", "next\u0085line", "file\x1csep", "unit\x1fsep",
        " ", "\t\n", "\u3000",
        # NFKC territory and ftfy's own tables
        "ＬＯＵＤ　ＮＯＩＳＥＳ", "ｶﾀｶﾅ ﾊﾝｶｸ", "①②③ ⑴ ⒈", "½ ¼ ¾ ⅓", "x² y³ H₂O", "™ © ® ℃ ℉ №",
        "Ⅻ ⅻ ㍿ ㌀ ㈱", "ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ ﬓ", "Ĳ ĳ ŉ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ", "µ Å Ω K", "…‥ — – ―",
        "‘single’ “double” ‚low‛ „low‟ ʼmodifier", "‹angle› «guillemets»",
        # accents and combining marks
        "e\u0301cole", "a\u0300\u0301\u0302\u0303", "n\u0303o", "\u0301leading mark", "Å vs A\u030a vs \u212b",
        "ñ Ñ ç Ç ø Ø å æ œ Œ ß ẞ", "İ ı I i", "ΟΔΟΣ ΣΟΦΟΣ Σ ΑΣ.", "Ǳ ǲ ǳ",
        # scripts
        "नमस्ते दुनिया", "สวัสดีชาวโลก", "مرحبا بالعالم", "שלום עולם", "안녕하세요 세계", "ᄀᄁ ᅡ ᆨ",
        "Γειά σου κόσμε", "日本語のテキストと漢字", "𠀋𡈽𡌛 rare cjk", "龘靐齉",
        # emoji
        "❤️ ❤ ♥", "1️⃣ #️⃣", "🇺🇸 🇯🇵 🏳️‍🌈", "👍🏽 👍🏿", "🧑‍🚀 astronaut", "😀😃😄😁",
        # special token strings
        "</s>", "<pad>", "<unk>", "<s>", "hello</s>world", "a <pad> b", "<extra_id_0> <extra_id_99>",
        "<|endoftext|>", "<|startoftext|>hi", "A <|ENDOFTEXT|> b", "x<|endoftext|>y", "<START_OF_TEXT>",
        "<end_of_text>", "▁", "▁▁word", "word▁", "a▁b",
        # html
        "&amp;amp;amp; triple", "&lt;b&gt; and <i>", "a < b &amp; c", "&notin &not; &notit;", "&#x27;&#39;&#8217;",
        "&#128512; &#x1F600;", "&#0; &#x110000; &#xD800;", "&#150; &#128; &#x9f;", "&AMP; &EACUTE; &SZLIG;",
        "&eacute;&Eacute;&EACUTE;", "&ntilde; &Ntilde; &NTILDE; &nTILDE;", "&nbsp;&NBSP;", "&amp", "&ampx",
        "&#65&#66;", "&#x41g", "&;&#;&#x;", "&zwnj;&zwj;", "&NotEqualTilde;", "line1 &amp;\nline2 <tag> &amp;",
        # controls
        "bell\x07char", "nul\x00char", "del\x7fchar", "bom\ufeffchar", "\x1b[31mred\x1b[0m text",
        "arabic\u206acontrol", "obj\ufffcrep", "c1\x80\x93\x9fcontrols", "rtl\u200fmark\u200e",
        "\x1b\x1bab cd", "a\x1bb", "\ufb01\x1bb c", "\x1b\ufb01ne day", "\x07 bell first", "\u200b\u200b two zwsp",
        # contractions and case
        "'S 'T 'RE 'VE 'M 'LL 'D", "it'S", "'ſ", "rock'n'roll", "''quoted''", "O'Neil's",
        # mojibake (ftfy repairs these; the Swift port does not)
        "cafÃ©", "â€œquotedâ€\x9d", "Ã¼ber", "schÃ¶n",
        # misc
        "http://example.com/a_b-c?d=e&f=g#h", "snake_case camelCase kebab-case", "C++ C# F# .NET",
        "3.14159265358979", "1,000,000", "-42 +42 ±42", "$€£¥₹₿", "@user #tag", "a/b\\c|d",
        "x" * 300, "word " * 120, long_prompt * 4, ("日本" * 200), "a" * 1000,
    ]
    return fixture + extra


# --------------------------------------------------------------------------------------------------------------
def train_models(tmp):
    spm.set_random_generator_seed(17)  # with num_threads=1 the trained models are then reproducible
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(training_corpus()) + "\n")
    common = dict(input=corpus, model_type="unigram", num_threads=1, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                  pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", minloglevel=2)
    os.makedirs(os.path.join(RES, "t5_tiny"), exist_ok=True)
    os.makedirs(os.path.join(RES, "t5_bytes"), exist_ok=True)
    spm.SentencePieceTrainer.train(model_prefix=os.path.join(tmp, "t5_tiny"), vocab_size=1200,
                                   normalization_rule_name="nmt_nfkc", character_coverage=0.9995, **common)
    spm.SentencePieceTrainer.train(model_prefix=os.path.join(tmp, "t5_bytes"), vocab_size=600,
                                   normalization_rule_name="identity", character_coverage=0.98,
                                   byte_fallback=True, **common)
    from sentencepiece import sentencepiece_model_pb2
    for name in ("t5_tiny", "t5_bytes"):
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(open(os.path.join(tmp, name + ".model"), "rb").read())
        proto.trainer_spec.ClearField("input")  # temporary paths: keep the committed file reproducible
        proto.trainer_spec.ClearField("model_prefix")
        open(os.path.join(RES, name, "spiece.model"), "wb").write(proto.SerializeToString())


def save_t5_tokenizer_json(name, tmp):
    """transformers' own conversion of spiece.model, saved as tokenizer.json (what from_pretrained writes)."""
    src = os.path.join(tmp, name + "_src")
    os.makedirs(src, exist_ok=True)
    open(os.path.join(src, "spiece.model"), "wb").write(open(os.path.join(RES, name, "spiece.model"), "rb").read())
    json.dump({"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "extra_ids": 100}, open(os.path.join(src, "tokenizer_config.json"), "w"))
    tok = transformers.T5Tokenizer.from_pretrained(src)
    out = os.path.join(tmp, name + "_out")
    tok.save_pretrained(out)
    data = json.load(open(os.path.join(out, "tokenizer.json")))
    data["truncation"] = None
    data["padding"] = None
    with open(os.path.join(RES, name, "tokenizer.json"), "w") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    return tok


def base_precompiled(base):
    """The Precompiled normalizer of a tokenizer.json (None for a model without a charsmap)."""
    norm = base["normalizer"] or {"type": "Sequence", "normalizers": []}
    for n in ([norm] if norm["type"] != "Sequence" else norm["normalizers"]):
        if n["type"] == "Precompiled":
            return n
    return None


def t5_variants(base):
    """The normalizer / pre_tokenizer layouts T5 tokenizer.json files come in."""
    precompiled = base_precompiled(base)
    chain = [precompiled] if precompiled else []
    return {
        # what transformers 5.x writes (also the layout of recent hub files)
        "as_saved": {"normalizer": base["normalizer"], "pre_tokenizer": base["pre_tokenizer"]},
        # the same with the Unigram model's byte_fallback switched on (transformers' T5Tokenizer never sets it)
        "as_saved_byte_fallback": {"normalizer": base["normalizer"], "pre_tokenizer": base["pre_tokenizer"],
                                   "model_byte_fallback": True},
        # t5-v1_1 era files: Precompiled only, WhitespaceSplit + Metaspace with the old add_prefix_space field
        "legacy_add_prefix_space": {
            "normalizer": precompiled,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}]}},
        # SpmConverter.normalizer + Metaspace(prepend_scheme=always): Strip right, " {2,}" -> "▁"
        "spm_converter": {
            "normalizer": {"type": "Sequence", "normalizers": chain + [
                {"type": "Strip", "strip_left": False, "strip_right": True},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}]},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}},
        # build_tokenizer_from_spm_proto: whitespace handled by regex Replace, Metaspace without splitting
        "spm_proto_first": {
            "normalizer": {"type": "Sequence", "normalizers": chain + [
                {"type": "Replace", "pattern": {"Regex": "\\A +| +\\z"}, "content": ""},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}]}},
        # Precompiled + " {2,}" -> " " with Metaspace always/split (FLUX-era hub layout)
        "replace_spaces_always": {
            "normalizer": {"type": "Sequence", "normalizers": chain + [
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}},
        # Metaspace without a prefix, NFKC + Lowercase + Strip + Prepend (exercise the rest of the components)
        "nfkc_lower_never": {
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
                {"type": "Prepend", "prepend": "▁"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True}]}},
    }


def t5_oracle(name, texts, tmp):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(RES, name, "spiece.model"))
    eos = sp.eos_id()
    tok = save_t5_tokenizer_json(name, tmp)
    base = json.load(open(os.path.join(RES, name, "tokenizer.json")))
    out = {"sentencepiece": [sp.encode(t) + [eos] for t in texts], "variants": {}}
    precompiled = base_precompiled(base)  # patches refer to it as {"$ref": "precompiled_of_tokenizer_json"}
    for vname, patch in t5_variants(base).items():
        data = json.loads(json.dumps(base))
        for key, value in patch.items():
            if key == "model_byte_fallback":
                data["model"]["byte_fallback"] = value
            else:
                data[key] = value
        t = tokenizers.Tokenizer.from_str(json.dumps(data))
        stored = {k: ({"$ref": "precompiled_of_tokenizer_json"} if v is precompiled else v) for k, v in patch.items()}
        if isinstance(stored.get("normalizer"), dict) and stored["normalizer"].get("type") == "Sequence":
            stored["normalizer"] = {"type": "Sequence", "normalizers": [
                {"$ref": "precompiled_of_tokenizer_json"} if n is precompiled else n
                for n in stored["normalizer"]["normalizers"]]}
        # transformers 5 loading this tokenizer.json (without spiece.model) rebuilds T5's own pipeline around the
        # file's vocab and charsmap: record what it gives too.
        folder = os.path.join(tmp, f"{name}_{vname}_tf5")
        os.makedirs(folder, exist_ok=True)
        json.dump(data, open(os.path.join(folder, "tokenizer.json"), "w"))
        json.dump({"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "extra_ids": 100},
                  open(os.path.join(folder, "tokenizer_config.json"), "w"))
        tf5 = transformers.T5Tokenizer.from_pretrained(folder)
        out["variants"][vname] = {"patch": stored, "ids": [t.encode(x).ids for x in texts],
                                  "transformers5_ids": [tf5(x).input_ids for x in texts]}
    out["transformers_256"] = [padded(tok(x, padding="max_length", max_length=256, truncation=True), tok.pad_token_id)
                               for x in texts]
    return out


def padded(encoding, pad_id):
    """A max_length-padded encoding stored as its unpadded head plus the pad count (keeps the oracle small)."""
    ids, mask = encoding.input_ids, encoding.attention_mask
    real = sum(mask)
    assert mask == [1] * real + [0] * (len(ids) - real) and all(i == pad_id for i in ids[real:])
    return {"ids": ids[:real], "pad": len(ids) - real}


# --------------------------------------------------------------------------------------------------------------
def load_open_clip_tokenizer():
    # Only the tensor output path and type annotations use torch: any attribute of the stub is `object`.
    stub = types.ModuleType("torch")
    stub.__getattr__ = lambda name: object
    sys.modules.setdefault("torch", stub)
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer", os.path.join(OPEN_CLIP_DIR, "tokenizer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def open_clip_ids(tok, text, clean_fn=None, context_length=77):
    if clean_fn is not None:
        saved, tok.clean_fn = tok.clean_fn, clean_fn
    try:
        tokens = [tok.sot_token_id] + tok.encode(text) + [tok.eot_token_id]
    finally:
        if clean_fn is not None:
            tok.clean_fn = saved
    if len(tokens) > context_length:  # SimpleTokenizer.__call__
        tokens = tokens[:context_length]
        tokens[-1] = tok.eot_token_id
    return tokens + [0] * (context_length - len(tokens))


def make_hf_clip_folder(folder, merges_gz, pad_token, normalized_specials=None):
    """vocab.json / merges.txt in transformers' CLIP layout from open_clip's merges (CLIPTokenizerTests does the same)."""
    lines = gzip.open(merges_gz).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_chars = [chr(c) for c in cs]
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(folder, exist_ok=True)
    json.dump({t: i for i, t in enumerate(vocab)}, open(os.path.join(folder, "vocab.json"), "w"), ensure_ascii=False)
    open(os.path.join(folder, "merges.txt"), "w").write("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {"model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>", "pad_token": pad_token, "tokenizer_class": "CLIPTokenizer"}
    if normalized_specials is not None:  # the openai/clip-vit-large-patch14 layout (FLUX copies it)
        config["added_tokens_decoder"] = {
            str(49406 + i): {"content": t, "lstrip": False, "normalized": normalized_specials, "rstrip": False,
                             "single_word": False, "special": True}
            for i, t in enumerate(["<|startoftext|>", "<|endoftext|>"])}
    json.dump(config, open(os.path.join(folder, "tokenizer_config.json"), "w"))


def clip_oracle(texts, tmp):
    import ftfy
    mod = load_open_clip_tokenizer()
    tok = mod.SimpleTokenizer()

    def clean_no_fix_encoding(x):
        x = ftfy.fix_text(x, fix_encoding=False)
        x = mod.html.unescape(mod.html.unescape(x)).strip()
        return mod.whitespace_clean(x).lower()

    out = {"ftfy_version": ftfy.__version__,
           "open_clip_clean": [tok.clean_fn(t) for t in texts],
           "open_clip": [open_clip_ids(tok, t) for t in texts],
           "open_clip_no_fix_encoding": [open_clip_ids(tok, t, clean_no_fix_encoding) for t in texts]}
    merges_gz = os.path.join(OPEN_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz")
    for key, pad, normalized in (("transformers_pad_eos", "<|endoftext|>", None),
                                 ("transformers_pad_bang", "!", None),
                                 ("transformers_decoder_normalized", "<|endoftext|>", True)):
        folder = os.path.join(tmp, key)
        make_hf_clip_folder(folder, merges_gz, pad, normalized)
        t = transformers.CLIPTokenizer.from_pretrained(folder)
        out[key] = [padded(t(x, padding="max_length", max_length=77, truncation=True), t.pad_token_id) for x in texts]
        out[key + "_unpadded"] = [t(x).input_ids for x in texts]
    return out


def main():
    texts = test_texts()
    with tempfile.TemporaryDirectory() as tmp:
        train_models(tmp)
        result = {
            "generator": "scripts/make_tokenizer_oracle.py",
            "versions": {"sentencepiece": spm.__version__, "tokenizers": tokenizers.__version__,
                         "transformers": transformers.__version__},
            "texts": texts,
            "t5_tiny": t5_oracle("t5_tiny", texts, tmp),
            "t5_bytes": t5_oracle("t5_bytes", texts, tmp),
            "clip": clip_oracle(texts, tmp),
        }
    result["versions"]["ftfy"] = result["clip"].pop("ftfy_version")
    data = json.dumps(result, ensure_ascii=True, separators=(",", ":")).encode()
    with open(os.path.join(RES, "tokenizer_oracle.json.gz"), "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{len(texts)} texts; wrote {RES}")


if __name__ == "__main__":
    main()
