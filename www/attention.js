// The attention view of a bot reply: a table, reply words as rows and the message's words
// (and EOS) as columns, each cell shaded by the decoder's attention weight at that step and
// holding the number, so that the heat map and its accessible table are one element.

let views = 0;

function cell(tag, text, attributes = {}) {
  const el = document.createElement(tag);
  el.textContent = text;
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

// A "Show attention" toggle and the hidden table, for a reply from the worker.
export function attentionView(reply) {
  if (!reply.attention?.length) return null;
  const id = `attention-${++views}`;
  const wrapper = document.createElement("div");
  wrapper.className = "attention";
  const toggle = cell("button", "Show attention", {
    type: "button", class: "link", "aria-expanded": "false", "aria-controls": id,
  });
  const figure = document.createElement("figure");
  figure.id = id;
  figure.hidden = true;

  const about = cell("p", "Where the decoder looked: each row is a reply word, each column a word of your message; the darker the cell, the more weight.");
  const table = document.createElement("table");
  table.append(cell("caption", "Attention weights of the reply", { class: "visually-hidden" }));
  const head = document.createElement("tr");
  head.append(cell("th", "reply ↓ / message →", { scope: "col" }));
  for (const word of reply.input_words) head.append(cell("th", word, { scope: "col" }));
  table.append(head);
  reply.attention.forEach((row, i) => {
    const tr = document.createElement("tr");
    tr.append(cell("th", reply.words[i], { scope: "row" }));
    for (const weight of row) {
      const td = cell("td", weight.toFixed(2));
      // One ramp from the background (0) to full ink (1), as a custom property.
      td.style.setProperty("--w", weight.toFixed(3));
      if (weight > 0.5) td.className = "strong";
      tr.append(td);
    }
    table.append(tr);
  });
  const legend = document.createElement("figcaption");
  legend.append(cell("span", "0"), cell("span", "", { class: "ramp", "aria-hidden": "true" }), cell("span", "1"));
  legend.append(cell("small", "Attention shows where the model looked, not necessarily why it chose a word."));
  const scroller = cell("div", "", { class: "scroll" });
  scroller.append(table);
  figure.append(about, scroller, legend);

  toggle.addEventListener("click", () => {
    figure.hidden = !figure.hidden;
    toggle.setAttribute("aria-expanded", String(!figure.hidden));
    toggle.textContent = figure.hidden ? "Show attention" : "Hide attention";
    if (!figure.hidden) wrapper.closest("li").scrollIntoView({ block: "nearest" });
  });
  wrapper.append(toggle, figure);
  return wrapper;
}
