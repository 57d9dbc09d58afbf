// The page: the chat is the <burn-chat> element; the page adds the offline cache of
// everything it and the element fetch (sw.js).
import "./burn-chat.js";

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch((e) => console.warn("no offline cache:", e));
}
