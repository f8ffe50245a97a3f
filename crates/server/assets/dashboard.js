// The dashboard's only script: a button with data-copy="ID" copies the value of the
// element with that id, and says so in the live region beside it.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copy + "-status");
  try {
    await navigator.clipboard.writeText(source.value);
    status.textContent = "Copied to the clipboard.";
  } catch {
    source.focus();
    source.select();
    status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
  }
});
