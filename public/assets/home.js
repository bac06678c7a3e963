// The home page's one action: ask this relay for a key pair and show it.
const button = document.getElementById('new-keys');
const output = document.getElementById('keys');
button.addEventListener('click', async () => {
  const response = await fetch('/keys');
  const pair = await response.json();
  output.hidden = false;
  output.textContent = response.ok
    ? `private: ${pair.private}   (keep it secret: it owns both paths)\npublic:  ${pair.public}`
    : `The relay answered ${response.status}: ${pair.message}`;
});
