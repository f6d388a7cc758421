"""Chat templates shared by the template and training tests."""

#: a Mistral-like layout that keeps the system prompt (in the last user turn), trims contents, ends replies in </s>
MISTRAL_LIKE = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- set ns = namespace(last_user=-1) %}{%- for m in loop_messages %}{%- if m['role'] == 'user' %}"
    "{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{{- '<s>' }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
    "{%- if loop.index0 == ns.last_user and system is defined %}"
    "{{- '[INST] ' + system + '\n\n' + message['content'] | trim + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] | trim + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] | trim + '</s>' }}{%- endif %}"
    "{%- endfor %}"
)
