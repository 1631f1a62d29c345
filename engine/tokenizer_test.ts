// The byte-level tokenizer in testdata/ is the one tools/train_tiny_model.py
// writes: ids 0..255 are bytes, 256 <pad>, 257 <bos>, 258 <eos>.
import assert from "node:assert/strict";
import { IncrementalDetokenizer } from "./detokenizer.ts";
import { FALLBACK_CHAT_TEMPLATE, ModelTokenizer } from "./tokenizer.ts";

const DIR = new URL("./testdata/byte_tokenizer", import.meta.url).pathname;
const tokenizerJson = JSON.parse(
  await Deno.readTextFile(`${DIR}/tokenizer.json`),
);
const tokenizerConfig = JSON.parse(
  await Deno.readTextFile(`${DIR}/tokenizer_config.json`),
);
const BOS = 257, EOS = 258;
const bytes = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("ModelTokenizer.load() encodes with the BOS the post-processor adds and decodes without specials", async () => {
  const tok = await ModelTokenizer.load(DIR);
  assert.equal(tok.bosTokenId, BOS);
  assert.deepEqual(tok.eosTokenIds, [EOS]);
  assert.equal(tok.chatTemplate, undefined);
  assert.deepEqual(tok.encode("Hé"), [BOS, ...bytes("Hé")]);
  assert.deepEqual(tok.encode("Hé", { addSpecialTokens: false }), bytes("Hé"));
  assert.equal(tok.decode([BOS, ...bytes("Hé"), EOS]), "Hé");
  assert.equal(
    tok.decode([BOS, 72, EOS], { skipSpecialTokens: false }),
    "<bos>H<eos>",
  );
});

Deno.test("ModelTokenizer.load() gathers eos ids from config.json and generation_config.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${DIR}/${f}`, `${dir}/${f}`);
    }
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ eos_token_id: [10, EOS] }),
    );
    await Deno.writeTextFile(
      `${dir}/generation_config.json`,
      JSON.stringify({ eos_token_id: 13 }),
    );
    await Deno.writeTextFile(
      `${dir}/chat_template.jinja`,
      "{{ messages[0].content }}!",
    );
    const tok = await ModelTokenizer.load(dir);
    assert.deepEqual(tok.eosTokenIds, [10, EOS, 13]);
    assert.equal(tok.renderChat([{ role: "user", content: "hi" }]), "hi!");
    await Deno.remove(`${dir}/tokenizer.json`);
    await assert.rejects(
      ModelTokenizer.load(dir),
      /tokenizer\.json is missing/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderChat() without a model template uses the documented User:/Assistant: fallback", () => {
  const tok = new ModelTokenizer(tokenizerJson, tokenizerConfig);
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Who?" },
  ];
  assert.equal(
    tok.renderChat(messages),
    "System: Be brief.\nUser: Who?\nAssistant:",
  );
  assert.equal(
    tok.renderChat(messages, { addGenerationPrompt: false }),
    "System: Be brief.\nUser: Who?\n",
  );
  assert.deepEqual(tok.encodeChat([{ role: "user", content: "A" }]), [
    BOS,
    ...bytes("User: A\nAssistant:"),
  ]);
  assert.match(FALLBACK_CHAT_TEMPLATE, /Assistant:/);
});

Deno.test("renderChat() uses tokenizer_config's chat_template, which writes its own BOS", () => {
  const tok = new ModelTokenizer(tokenizerJson, {
    ...tokenizerConfig,
    chat_template:
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}" +
      "{% if add_generation_prompt %}<assistant>{% endif %}",
  });
  assert.equal(
    tok.renderChat([{ role: "user", content: "x" }]),
    "<bos><user>x<assistant>",
  );
  assert.deepEqual(tok.encodeChat([{ role: "user", content: "x" }]), [
    BOS,
    ...bytes("<user>x<assistant>"),
  ]);
});

Deno.test("renderChat() surfaces a template's raise_exception as an error", () => {
  const tok = new ModelTokenizer(tokenizerJson, {
    ...tokenizerConfig,
    chat_template:
      "{% if messages[0].role != 'user' %}{{ raise_exception('user first') }}{% endif %}",
  });
  assert.throws(
    () => tok.renderChat([{ role: "assistant", content: "x" }]),
    /^Error: The chat template failed on these messages: user first$/,
  );
});

Deno.test("IncrementalDetokenizer emits only complete characters when bytes split them", async () => {
  const tok = await ModelTokenizer.load(DIR);
  const text = "a€😀b é";
  const stream = new IncrementalDetokenizer(tok);
  const pieces = tok.encode(text, { addSpecialTokens: false }).map((id) =>
    stream.push(id)
  );
  assert.deepEqual(pieces.filter((p) => p !== ""), [
    "a",
    "€",
    "😀",
    "b",
    " ",
    "é",
  ]);
  assert.equal(pieces.join(""), text);
  assert.ok(pieces.every((p) => !p.includes("\uFFFD")));
  assert.equal(stream.push(EOS), ""); // special tokens are skipped
  assert.equal(stream.flush(), "");
});

Deno.test("IncrementalDetokenizer.flush() returns a dangling partial character as U+FFFD", async () => {
  const tok = await ModelTokenizer.load(DIR);
  const stream = new IncrementalDetokenizer(tok, { context: bytes("ab") });
  assert.equal(stream.push(0x63), "c"); // the context is not re-emitted
  assert.equal(stream.push(0xe2), "");
  assert.equal(stream.push(0x82), "");
  assert.equal(stream.flush(), "\uFFFD");
});
