// Submits a POST form built on the fly, with the page's CSRF token: what a stale
// or tampered form sends. Playwright evaluates this function with [path, fields].
([path, fields]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = path;
  const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  for (const [name, value] of Object.entries({ ...fields, csrfmiddlewaretoken: token })) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}
