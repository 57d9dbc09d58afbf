// The search settings panel: its values are the `options` of every reply, remembered in
// localStorage across visits. Only the fields of the chosen search are sent; greedy sends
// none, so it is the tutorial's search.

const KEY = "burnchat.search";

// The page's default: beam search reranked against stock replies (README, "Decoding").
export const DEFAULTS = {
  search: "beam",
  beamWidth: 10,
  lengthPenalty: 1,
  antiLm: 1.2,
  mmi: 1,
  temperature: 1,
  topK: 0,
  topP: 0.9,
  samples: 1,
  noRepeatNgram: 2,
  minLength: 2,
};

// Which fields each search reads.
export const FIELDS = {
  greedy: [], // the tutorial's search, exactly
  beam: ["beamWidth", "lengthPenalty", "antiLm", "mmi", "noRepeatNgram", "minLength"],
  sample: ["temperature", "topK", "topP", "samples", "antiLm", "mmi", "noRepeatNgram", "minLength"],
};

function stored() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) || "{}") };
  } catch {
    return { ...DEFAULTS };
  }
}

export function searchSettings(form) {
  const fill = (values) => {
    for (const [name, value] of Object.entries(values)) {
      if (form.elements[name]) form.elements[name].value = String(value);
    }
    show();
  };
  // Only the chosen search's fieldset is shown.
  const show = () => {
    for (const fieldset of form.querySelectorAll("fieldset[data-for]")) {
      fieldset.hidden = !fieldset.dataset.for.split(" ").includes(form.elements.search.value);
    }
  };
  const read = () => {
    const values = { search: form.elements.search.value };
    for (const name of Object.keys(DEFAULTS)) {
      if (name === "search") continue;
      const number = Number(form.elements[name].value);
      values[name] = form.elements[name].value !== "" && Number.isFinite(number) ? number : DEFAULTS[name];
    }
    return values;
  };
  form.addEventListener("change", () => {
    show();
    localStorage.setItem(KEY, JSON.stringify(read()));
  });
  form.querySelector("#search-reset").addEventListener("click", () => {
    localStorage.removeItem(KEY);
    fill(DEFAULTS);
  });
  fill(stored());
  return {
    // The options for `reply()`: the chosen search and its fields; sampling gets a fresh
    // seed per message, so the same message can get another reply.
    options() {
      const values = read();
      const options = { search: values.search };
      for (const name of FIELDS[values.search]) options[name] = values[name];
      if (values.search === "sample") options.seed = Math.floor(Math.random() * 2 ** 32);
      return options;
    },
    // The reply-to-message weight only means something with a backward model.
    offerMmi(available) {
      form.elements.mmi.disabled = !available;
    },
  };
}
