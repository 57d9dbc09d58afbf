// A TypeScript user of the npm package: `make test-types` packs pkg/, installs the tarball
// beside this file and runs `tsc --noEmit` on it. Every export is used once, and the
// `@ts-expect-error` lines fail the check if the declarations stop catching those mistakes.
import init, {
  Chatbot,
  type BenchResult,
  type LoadProgress,
  type Reply,
  type SearchOptions,
  type SoakResult,
  bench,
  load,
  memoryBytes,
  reply,
  soak,
} from "burnchat";

export async function main(): Promise<string> {
  await init();
  const seen: LoadProgress[] = [];
  const bot: Chatbot = await Chatbot.load("weights/", {
    onProgress: (p) => {
      const total: number | null = p.total;
      seen.push({ ...p, total });
    },
  });
  const options: SearchOptions = { search: "beam", beamWidth: 10, noRepeatNgram: 2, antiLm: 0.5, minLength: 2 };
  const answer: Reply = bot.reply("hello", options);
  const greedy: Reply = bot.reply("how are you?");
  const words: string[] = answer.words;
  const weights: number[][] = answer.attention;
  const timed: BenchResult = bot.bench(1);
  const memory: SoakResult = bot.soak(10, { search: "greedy" });
  bot.free();

  // The module-level model, from bytes.
  const bytes = async (file: string) => new Uint8Array(await (await fetch(`weights/${file}`)).arrayBuffer());
  load(await bytes("model.safetensors"), await bytes("config.json"), await bytes("voc.json"));
  const bundled: Reply = reply("hello", { search: "sample", samples: 20, topP: 0.9, seed: 1 });
  const other = new Chatbot(await bytes("model.safetensors"), await bytes("config.json"), await bytes("voc.json"));
  other.free();
  const all: [BenchResult, SoakResult, number] = [bench(1), soak(10), memoryBytes()];

  // @ts-expect-error: a misspelt option is not a SearchOptions.
  reply("hello", { beamWidht: 3 });
  // @ts-expect-error: the strategy is one of three names.
  reply("hello", { search: "best" });
  // @ts-expect-error: a reply has no field `answer`.
  void answer.answer;

  return [answer.text, greedy.reply, words.join(" "), String(weights.length), String(timed.median_ms),
    String(memory.max_bytes), bundled.text, String(all[2]), String(seen.length)].join("\n");
}
