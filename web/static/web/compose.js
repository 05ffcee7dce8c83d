// Live remaining-characters count for the compose box. The count comes from
// the server (the same rule that accepts or refuses a post, with its reason),
// so the two always agree; requests are debounced and stale ones aborted.
(function () {
  const form = document.getElementById("compose");
  if (!form) return;
  const textarea = form.querySelector("textarea");
  const counter = document.getElementById("remaining");
  const button = document.getElementById("post-button");
  const problem = document.getElementById("compose-problem");
  const url = form.dataset.countUrl;
  let timer = null;
  let inFlight = null;

  function show(result) {
    counter.textContent = String(result.remaining);
    counter.classList.toggle("warn", result.remaining <= 20 && result.remaining >= 0);
    counter.classList.toggle("over", result.remaining < 0);
    button.disabled = !result.valid;
    counter.dataset.weightedLength = String(result.weighted_length);
    // An empty box needs no explanation; anything else that cannot be posted does.
    if (problem) problem.textContent = textarea.value && result.message ? result.message : "";
  }

  // A draft far past the limit is refused before counting: say why.
  function refuse(result) {
    counter.textContent = "";
    counter.classList.remove("warn");
    counter.classList.add("over");
    button.disabled = true;
    if (problem) problem.textContent = result.error;
  }

  async function refresh() {
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    try {
      const response = await fetch(url + "?text=" + encodeURIComponent(textarea.value), {
        signal: inFlight.signal, headers: { "Accept": "application/json" },
      });
      if (response.ok) show(await response.json());
      else if (response.status === 400) refuse(await response.json());
    } catch (error) {
      if (error.name !== "AbortError") counter.textContent = "?";
    }
  }

  textarea.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 120);
  });
  refresh();
})();
