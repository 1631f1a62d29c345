/**
 * A model's tokenizer: tokenizer.json through Hugging Face's tokenizers.js,
 * the end-of-sequence ids, and the chat template (rendered with
 * @huggingface/jinja, as transformers renders it with Jinja2).
 *
 * @module
 */

// Inline until deno.json's imports map names them (it is not this module's to edit).
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";

/** One chat message. */
export interface ChatMessage {
  /** "system", "user" or "assistant" (templates may accept others). */
  readonly role: string;
  /** The message text, inserted into the chat template as is. */
  readonly content: string;
}

/** Extra facts a tokenizer cannot know from its own files. */
export interface ModelTokenizerOptions {
  /** End-of-sequence ids from config.json / generation_config.json. */
  readonly eosTokenIds?: readonly number[];
  /** A chat template (chat_template.jinja), preferred to tokenizer_config's. */
  readonly chatTemplate?: string;
}

type Json = Record<string, unknown>;

/**
 * The template used when a model has none: one "Role: content" line per
 * message, then "Assistant:" to prompt the reply. Encoded with the BOS the
 * tokenizer adds (a real template writes its own BOS).
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for m in messages %}{{ m.role[0] | upper }}{{ m.role[1:] }}: {{ m.content }}\n{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}";

/** Encode, decode, stop ids and chat formatting for one model. */
export class ModelTokenizer {
  /** The BOS id, when the tokenizer config names a BOS token. */
  readonly bosTokenId?: number;
  /** Every id that ends a sequence (config.json, generation_config.json, tokenizer_config.json). */
  readonly eosTokenIds: readonly number[];
  /** The model's own chat template, if it has one. */
  readonly chatTemplate?: string;
  #tokenizer: Tokenizer;
  #config: Json;
  #template: Template;

  /**
   * Builds a tokenizer from parsed files; {@linkcode ModelTokenizer.load}
   * reads them from a model directory.
   *
   * @param tokenizerJson The parsed tokenizer.json.
   * @param tokenizerConfig The parsed tokenizer_config.json ({} if absent).
   */
  constructor(
    tokenizerJson: Json,
    tokenizerConfig: Json,
    options: ModelTokenizerOptions = {},
  ) {
    this.#tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    this.#config = tokenizerConfig;
    this.bosTokenId = this.#id(tokenizerConfig.bos_token);
    const eos = [...(options.eosTokenIds ?? [])];
    const fromConfig = this.#id(tokenizerConfig.eos_token);
    if (fromConfig !== undefined) eos.push(fromConfig);
    this.eosTokenIds = [...new Set(eos)];
    this.chatTemplate = options.chatTemplate ??
      pickTemplate(tokenizerConfig.chat_template);
    this.#template = new Template(
      this.chatTemplate ?? FALLBACK_CHAT_TEMPLATE,
    );
  }

  /**
   * Reads tokenizer.json (required), tokenizer_config.json,
   * chat_template.jinja, and the eos_token_id of config.json and
   * generation_config.json (all optional) from a model directory.
   */
  static async load(dir: string): Promise<ModelTokenizer> {
    const tokenizerJson = await readJson(`${dir}/tokenizer.json`);
    if (tokenizerJson === undefined) {
      throw new Error(
        `${dir}/tokenizer.json is missing: the engine needs a Hugging Face fast tokenizer file`,
      );
    }
    const eosTokenIds: number[] = [];
    for (const name of ["config.json", "generation_config.json"]) {
      const eos = (await readJson(`${dir}/${name}`))?.eos_token_id;
      const ids: unknown[] = [eos ?? []].flat();
      eosTokenIds.push(
        ...ids.filter((id): id is number => Number.isInteger(id)),
      );
    }
    const chatTemplate = await Deno.readTextFile(`${dir}/chat_template.jinja`)
      .catch(() => undefined);
    return new ModelTokenizer(
      tokenizerJson,
      (await readJson(`${dir}/tokenizer_config.json`)) ?? {},
      { eosTokenIds, chatTemplate },
    );
  }

  /** Token ids of `text`, with the special tokens (BOS) the tokenizer's post-processor adds. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.#tokenizer.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
    }).ids;
  }

  /** Text of `ids`; special tokens (BOS, EOS, pad) are left out unless asked for. */
  decode(
    ids: readonly number[],
    options: { skipSpecialTokens?: boolean } = {},
  ): string {
    if (ids.length === 0) return ""; // tokenizers.js refuses an empty list
    return this.#tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? true,
    });
  }

  /** The chat as prompt text, with the model's template or {@linkcode FALLBACK_CHAT_TEMPLATE}. */
  renderChat(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean } = {},
  ): string {
    const special = (key: string) => tokenText(this.#config[key]) ?? "";
    try {
      // @huggingface/jinja supplies raise_exception, range and strftime_now.
      return this.#template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: special("bos_token"),
        eos_token: special("eos_token"),
        pad_token: special("pad_token"),
        unk_token: special("unk_token"),
      });
    } catch (cause) {
      throw new Error(
        `The chat template failed on these messages: ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
  }

  /** Token ids of the rendered chat (a model's template carries its own BOS; the fallback gets the tokenizer's). */
  encodeChat(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean } = {},
  ): number[] {
    return this.encode(this.renderChat(messages, options), {
      addSpecialTokens: this.chatTemplate === undefined,
    });
  }

  #id(token: unknown): number | undefined {
    const text = tokenText(token);
    return text === undefined ? undefined : this.#tokenizer.token_to_id(text);
  }
}

// tokenizer_config.json writes special tokens as a string or as a serialized
// AddedToken ({ "content": "<eos>", ... }).
function tokenText(token: unknown): string | undefined {
  if (typeof token === "string") return token;
  const content = (token as Json | null)?.content;
  return typeof content === "string" ? content : undefined;
}

// Older tokenizer_config files hold a list of named templates.
function pickTemplate(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return undefined;
  const named = value as { name?: string; template?: string }[];
  return (named.find((t) => t.name === "default") ?? named[0])?.template;
}

async function readJson(file: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new Error(`${file} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
}
