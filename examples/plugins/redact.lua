-- Redacts e-mail addresses and phone numbers from answers, streamed or whole, including ones
-- split across chunks: the tail of the text that could still grow into an address or a number is
-- held back and sent with the next chunk, or flushed at the end of the stream.
-- config: { "email": "[email]", "phone": "[phone]" }   (the replacements)
local EMAIL = plexus.config.email or "[email]"
local PHONE = plexus.config.phone or "[phone]"

local function is_alnum(b)
  return (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
end
local function is_digit(b) return b >= 48 and b <= 57 end
local function local_char(b) return is_alnum(b) or b == 46 or b == 95 or b == 37 or b == 43 or b == 45 end -- . _ % + -
local function domain_char(b) return is_alnum(b) or b == 46 or b == 45 end
local function phone_char(b) return is_digit(b) or b == 32 or b == 45 or b == 46 or b == 40 or b == 41 or b == 43 end

-- Replaces every "local@domain.tld" in s.
local function redact_emails(s)
  if not s:find("@", 1, true) then return s end -- no address: nothing to copy
  local out, i = {}, 1
  local pos = 1
  while true do
    local at = s:find("@", pos)
    if not at then break end
    local a = at
    while a > i and local_char(s:byte(a - 1)) do a = a - 1 end
    local b = at
    while b < #s and domain_char(s:byte(b + 1)) do b = b + 1 end
    while b > at and s:byte(b) == 46 do b = b - 1 end -- a sentence's full stop is not the domain
    local domain = s:sub(at + 1, b)
    if a < at and domain:find(".", 1, true) and is_alnum(domain:byte(#domain)) then
      out[#out + 1] = s:sub(i, a - 1)
      out[#out + 1] = EMAIL
      i = b + 1
    end
    pos = math.max(at, b) + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

-- Replaces runs of 7 to 15 digits written with spaces, dashes, dots, brackets or a leading +.
local find_any = plexus.find_any

local function redact_phones(s)
  if not find_any(s, "0123456789") then return s end -- most text: one search in C, not a walk byte by byte
  local out, i, p = {}, 1, 1
  while p <= #s do
    local b = s:byte(p)
    if (is_digit(b) or b == 43 or b == 40) and (p == 1 or not is_alnum(s:byte(p - 1))) then
      local q, digits = p, 0
      while q <= #s and phone_char(s:byte(q)) do
        if is_digit(s:byte(q)) then digits = digits + 1 end
        q = q + 1
      end
      local last = q - 1
      while last > p and not is_digit(s:byte(last)) and s:byte(last) ~= 41 do last = last - 1 end
      if digits >= 7 and digits <= 15 and (last == #s or not is_alnum(s:byte(last + 1))) then
        out[#out + 1] = s:sub(i, p - 1)
        out[#out + 1] = PHONE
        i = last + 1
      end
      p = q
    else
      p = p + 1
    end
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

local function redact(s) return redact_phones(redact_emails(s)) end

-- Where it is safe to cut: before the trailing run that might still be part of an address or a
-- number (letters, digits, @ . _ % + - and, between digits, spaces and brackets).
local function safe_cut(s)
  local p = #s
  while p > 0 do
    local b = s:byte(p)
    if local_char(b) or b == 64 or b == 40 or b == 41 then
      p = p - 1
    elseif b == 32 and p > 1 and (is_digit(s:byte(p - 1)) or s:byte(p - 1) == 41) then
      p = p - 1
    else
      break
    end
  end
  return p
end

local function content_chunk(template, text)
  return { id = template.id, object = "chat.completion.chunk", created = template.created,
           model = template.model, choices = { { index = 0, delta = { content = text }, finish_reason = plexus.null } } }
end

function on_chunk(chunk, ctx)
  if ctx.whole then
    local msg = chunk.choices and chunk.choices[1] and chunk.choices[1].message
    if msg and type(msg.content) == "string" then
      local redacted = redact(msg.content)
      if redacted == msg.content then return plexus.UNCHANGED end -- nothing to re-encode
      msg.content = redacted
      return plexus.MODIFIED
    end
    return plexus.UNCHANGED
  end
  local st = ctx.state -- a stream's held-back tail, from one chunk to the next
  if ctx.end_of_stream then
    if st.held and #st.held > 0 then ctx:insert(content_chunk(st.last or {}, redact(st.held))) end
    st.held = ""
    return plexus.UNCHANGED
  end
  local choice = chunk.choices and chunk.choices[1]
  local delta = choice and choice.delta
  if not delta or type(delta.content) ~= "string" then
    -- A chunk without text (the finish chunk): flush what is held before it.
    if st.held and #st.held > 0 then ctx:insert(content_chunk(chunk, redact(st.held))) end
    st.held = ""
    return plexus.UNCHANGED
  end
  st.last = { id = chunk.id, created = chunk.created, model = chunk.model }
  local text = (st.held or "") .. delta.content
  local cut = safe_cut(text)
  st.held = text:sub(cut + 1)
  delta.content = redact(text:sub(1, cut))
  return plexus.MODIFIED
end
